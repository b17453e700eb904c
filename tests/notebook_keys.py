"""The key values of each tutorial notebook in ``docs/``: what AllenSDK must agree with.

Each entry is a Python expression over the variables a notebook leaves behind after its
last cell. ``tests/data/export_notebooks.py`` runs the notebooks' code with AllenSDK 2.16.2
(its import line changed back) and evaluates these there; ``tests/test_notebooks.py`` runs
them through a Jupyter kernel with intake-vbo and evaluates them in that kernel. Plain
Python and numpy only: this module is imported by both, in either venv.
"""

from __future__ import annotations

import math

KEYS: dict[str, dict[str, str]] = {
    "01_data_access": {
        "n_behavior_sessions": "len(behavior_sessions)",
        "n_ophys_sessions": "len(behavior_ophys_sessions)",
        "n_ophys_experiments": "len(behavior_ophys_experiments)",
        "behavior_session_ids": "list(behavior_sessions.index)",
        "ophys_experiment_ids": "list(behavior_ophys_experiments.index)",
        "session_attributes": "behavior_session.list_data_attributes_and_methods()",
        "template_names": "list(behavior_session.stimulus_templates.index)",
        "gratings_90_sum": "behavior_session.stimulus_templates['warped']['gratings_90.0'].sum()",
        "experiment_attributes": "[n for n in ophys_experiment.list_data_attributes_and_methods()"
        " if n != 'update_targeted_imaging_depth']",
        "max_projection_shape": "list(ophys_experiment.max_projection.data.shape)",
        "max_projection_sum": "ophys_experiment.max_projection.data.sum()",
        "n_session_files": "len(filtered_behavior_sessions)",
    },
    "02_dataset_manifest": {
        "n_behavior_sessions": "len(cache.get_behavior_session_table())",
        "n_ophys_sessions": "len(ophys_sessions)",
        "n_ophys_experiments": "len(ophys_experiments)",
        "equipment": "list(np.sort(behavior_sessions.equipment_name.unique()))",
        "n_mice": "len(behavior_sessions.mouse_id.unique())",
        "cre_lines": "list(np.sort(behavior_sessions.cre_line.unique()))",
        "session_types": "list(np.sort(behavior_sessions.session_type.dropna().unique()))",
        "mice_per_genotype": "behavior_sessions.groupby('full_genotype').mouse_id.nunique()"
        ".to_dict()",
        "project_codes": "dict(zip(behavior_sessions.index, behavior_sessions.project_code))",
        "mouse_ophys_sessions": "list(mouse_ophys_sessions.sort_values('date_of_acquisition')"
        ".index)",
        "mouse_prior_exposures": "list(mouse_ophys_sessions.sort_values('date_of_acquisition')"
        ".prior_exposures_to_image_set)",
        "container": "ophys_container_id",
        "container_experiments": "list(sst_container_experiments.index)",
        "meso_session": "ophys_session_id",
        "meso_experiments": "list(ophys_experiment_ids)",
        "average_dff": "{k: float(np.mean(v)) for k, v in average_dff.items()}",
        "cells_per_experiment": "cell_per_exp.to_dict()",
        "n_cells": "len(cells_table)",
    },
    "03_load_ophys_data": {
        "experiment": "ophys_experiment_id",
        "n_selected": "len(selected_experiment_table)",
        "metadata": "{k: dataset.metadata[k] for k in ('session_type', 'cre_line', 'mouse_id',"
        " 'imaging_depth', 'targeted_structure', 'equipment_name', 'ophys_container_id',"
        " 'behavior_session_id', 'ophys_session_id', 'ophys_frame_rate', 'indicator')}",
        "dff_shape": "list(dff_array.shape)",
        "dff_sum": "np.nansum(dff_array)",
        "events_sum": "np.nansum(np.vstack(dataset.events.events.values))",
        "cell_specimen_ids": "list(cell_specimen_ids)",
        "segmentation_mask_sum": "np.asarray(dataset.segmentation_mask_image.data).sum()",
        "n_stimuli": "len(stimulus_table)",
        "n_omitted": "(stimulus_table.image_name == 'omitted').sum()",
        "stimulus_columns": "sorted(stimulus_table.keys())",
        "block_names": "list(stimulus_table.stimulus_block_name.unique())",
        "change_detection_images": "sorted(stimulus_presentations.image_name.unique())",
        "trials_columns": "list(trials_table.keys())",
        "n_trials": "len(trials_table)",
        "running_mean": "dataset.running_speed.speed.mean()",
        "pupil_area_mean": "np.nanmean(dataset.eye_tracking.pupil_area)",
        "pupil_width_sum": "np.nansum(dataset.eye_tracking.pupil_width)",
        "n_licks": "len(dataset.licks)",
        "reward_times": "list(dataset.rewards.timestamps)",
    },
    "04_mouse_history": {
        "session_ids": "list(behavior_session_ids)",
        "session_types": "list(this_mouse_table.session_type)",
        "task_parameters": "behavior_session_dict[behavior_session_ids[-1]].task_parameters",
        "training_5": "behavior_session_id",
        "n_presentations": "len(dataset.stimulus_presentations)",
        "lick_sample": "list(dataset.licks.sample(5, random_state=42).timestamps)",
        "reward_times": "list(dataset.rewards.timestamps)",
        "running_head": "list(dataset.running_speed.speed.head())",
        "hit_sample_start": "dataset.trials.query('hit').sample(random_state=0).start_time.iloc[0]",
        "metrics": "behavior_session_dict[behavior_session_id].get_performance_metrics()",
        "max_dprime": "list(this_mouse_table.max_dprime)",
        "total_reward_volume": "list(this_mouse_table.total_reward_volume)",
    },
    "05_compare_trial_types": {
        "experiment_id": "experiment_id",
        "metrics": "experiment_dataset.get_performance_metrics()",
        "trials_df_columns": "list(trials_df.columns)",
        "rolling": "{c: list(trials_df[c]) for c in ('reward_rate', 'hit_rate',"
        " 'false_alarm_rate', 'rolling_dprime')}",
        "n_change_detection": "len(stimulus_presentations)",
        "omitted_ids": "list(stimulus_presentations.query('image_name == \"omitted\"').index)",
        "images": "sorted(colormap)",
        "n_tidy": "len(tidy_dff_traces)",
        "tidy_dff_sum": "tidy_dff_traces.dff.sum()",
        "sampled_trials": "{name: int(experiment_dataset.trials.query(name)"
        ".sample(random_state=seed).index[0]) for name, seed in (('hit', 1), ('miss', 2),"
        " ('false_alarm', 2), ('correct_reject', 10))}",
    },
}


def plain(value):
    """``value`` as JSON-ready Python: numbers, text, lists and dicts (keys as text).

    NaN and infinities become the strings ``"nan"``, ``"inf"``, ``"-inf"``; a missing value
    (None, pandas.NA, NaT) becomes None; a timestamp its ISO text.
    """
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist") and not isinstance(value, str):
        items = value.tolist() if hasattr(value, "tolist") else value
        return [plain(v) for v in items] if isinstance(items, list) else plain(items)
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return int(value)
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        value = float(value)
        if math.isnan(value):
            return "nan"
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def key_values(notebook: str, namespace: dict) -> dict:
    """Evaluate the keys of ``notebook`` (a name in :data:`KEYS`) in its ``namespace``."""
    return {name: plain(eval(expression, namespace)) for name, expression in KEYS[notebook].items()}


def differences(expected, actual, where: str = "") -> list[str]:
    """Where two :func:`plain` values differ; floats within a relative 1e-9 count as equal.

    Integral floats equal to an int are equal (AllenSDK's tables keep some integral columns
    as float64, ours as integers: the same values).
    """
    number = (int, float)
    if isinstance(expected, number) and isinstance(actual, number):
        if isinstance(expected, bool) != isinstance(actual, bool):
            return [f"{where}: {expected!r} != {actual!r}"]
        same = math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
        return [] if same else [f"{where}: {expected!r} != {actual!r}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        if list(expected) != list(actual):
            return [f"{where}: keys {list(expected)} != {list(actual)}"]
        return [d for k in expected for d in differences(expected[k], actual[k], f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items != {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in differences(e, a, f"{where}[{i}]")]  # fmt: skip
    return [] if expected == actual else [f"{where}: {expected!r} != {actual!r}"]

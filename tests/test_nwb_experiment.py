"""intake_vbo.nwb.experiment: the ophys half of an experiment NWB, as AllenSDK 2.16.2 gives it.

Values are checked against what the fixture file holds (read here with h5py) and against
the rules of NWB-VIEWS.md; the parity tests at the end compare with AllenSDK's own output
(tests/data/allensdk_experiment_900000013.json). Files missing a part, or shaped the hard
way (-1 specimen ids, overlapping masks, events for a permuted subset of ROIs), are copies
of the fixture edited with h5py in tmp_path.
"""

from __future__ import annotations

import gc
import io
import shutil
import subprocess
import sys
import warnings
import weakref
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from shared import FIXTURES

from intake_vbo.base.errors import VboError
from intake_vbo.nwb.experiment import (
    BehaviorOphysExperiment,
    VisibleDeprecationWarning,  # numpy's, wherever this numpy keeps it
    open_experiment,
)

EXPERIMENT = FIXTURES / "behavior_ophys_experiment_900000013.nwb"
SESSION = FIXTURES / "behavior_session_800000012.nwb"
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not EXPERIMENT.is_file(), reason=f"no NWB fixtures at {FIXTURES}")

OPHYS = "processing/ophys"
TABLE = f"{OPHYS}/image_segmentation/cell_specimen_table"
EVENTS = f"{OPHYS}/event_detection"
SERIES = {
    "dff_traces": ("dff/traces", "dff"),
    "demixed_traces": ("demixed_trace/traces", "demixed_trace"),
    "neuropil_traces": ("neuropil_trace/traces", "neuropil_trace"),
    "corrected_fluorescence_traces": ("corrected_fluorescence/traces", "corrected_fluorescence"),
}
# AllenSDK's 35 names less update_targeted_imaging_depth (NWB-VIEWS.md §1)
OPHYS_ATTRIBUTES = [
    "average_projection", "max_projection", "segmentation_mask_image",
    "get_segmentation_mask_image", "cell_specimen_table", "roi_masks", "dff_traces",
    "corrected_fluorescence_traces", "demixed_traces", "events", "motion_correction",
    "ophys_experiment_id", "ophys_session_id", "ophys_timestamps", "metadata",
    "get_cell_specimen_ids", "get_cell_specimen_indices", "get_dff_traces",
]  # fmt: skip
SESSION_NAMES = [
    "behavior_session_id", "eye_tracking", "eye_tracking_rig_geometry",
    "get_performance_metrics", "get_reward_rate", "get_rolling_performance_df", "licks",
    "metadata", "raw_running_speed", "rewards", "running_speed", "stimulus_presentations",
    "stimulus_templates", "stimulus_timestamps", "task_parameters", "trials",
]  # fmt: skip
# AllenSDK's 35 names less update_targeted_imaging_depth (NWB-VIEWS.md §1)
NAMES = sorted({*OPHYS_ATTRIBUTES, *SESSION_NAMES, "neuropil_traces"})


@pytest.fixture(scope="module")
def exp():
    with open_experiment(EXPERIMENT) as experiment:
        yield experiment


@pytest.fixture(scope="module")
def stored():
    """What the fixture holds, read here with h5py."""
    with h5py.File(EXPERIMENT, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f[TABLE].attrs["colnames"]]
        data = {name: f[f"{TABLE}/{name}"][()] for name in [*names, "id"]}
        data["valid"] = np.flatnonzero(data["valid_roi"])
        data["colnames"] = names
        for attribute, (series, _) in SERIES.items():
            data[attribute] = f[f"{OPHYS}/{series}/data"][()]
        for name in ("r", "RMSE"):
            data[name] = f[f"{OPHYS}/corrected_fluorescence/{name}/data"][()]
        for name in ("data", "rois", "lambdas", "noise_stds"):
            data[f"events_{name}"] = f[f"{EVENTS}/{name}"][()]
        for name in ("max_projection", "average_image", "segmentation_mask_image"):
            data[name] = f[f"{OPHYS}/images/{name}"][()]
        data["resolution"] = f[f"{OPHYS}/images/max_projection"].attrs["resolution"]
        data["timestamps"] = f[f"{OPHYS}/dff/traces/timestamps"][()]
        data["rate"] = f["general/optophysiology/imaging_plane_1/imaging_rate"][()]
        for axis in "xy":
            data[f"motion_{axis}"] = f[f"{OPHYS}/ophys_motion_correction_{axis}/data"][()]
    return data


def edited(tmp_path: Path, edit) -> Path:
    """A copy of the experiment fixture changed by ``edit(h5py.File)``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / EXPERIMENT.name
    shutil.copyfile(EXPERIMENT, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def recreate(group: h5py.Group, name: str, value, **options) -> None:
    """Replace a dataset by one holding ``value``, keeping its attributes."""
    attrs = dict(group[name].attrs)
    del group[name]
    dataset = group.create_dataset(name, data=value, **options)
    for key, attr in attrs.items():
        dataset.attrs[key] = attr


def reference_filter(events: np.ndarray, scale: float, steps: int = 20) -> np.ndarray:
    """AllenSDK's per-ROI loop: np.convolve with the normalised half-normal pdf, cut to T."""
    x = np.arange(steps)
    pdf = np.sqrt(2 / np.pi) / scale * np.exp(-(x**2) / (2 * scale**2))
    pdf = pdf / pdf.sum()
    return np.array([np.convolve(row, pdf)[: len(row)] for row in events])


def one_line_naming(exc: pytest.ExceptionInfo, name: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and name in message


# -------------------------------------------------------------------- names and images


def test_names_are_allensdks_less_lims_update(exp):
    names = exp.list_data_attributes_and_methods()
    assert names == NAMES and len(names) == 34
    assert isinstance(exp, BehaviorOphysExperiment)


def test_projections_as_stored_with_spacing_in_mm(exp, stored):
    side = float(stored["resolution"] * 10)
    pairs = (("max_projection", "max_projection"), ("average_projection", "average_image"))
    for name, key in pairs:
        image = getattr(exp, name)
        assert np.array_equal(image.data, stored[key]) and image.data.dtype == np.uint8
        assert image.spacing == (side, side) and type(image.spacing[0]) is float
        assert image.unit == "mm"
        data, spacing, unit = image  # unpacks as AllenSDK's NamedTuple
        assert np.array_equal(np.asarray(image), data) and unit == "mm"
    assert exp.max_projection == exp.max_projection
    assert exp.max_projection != exp.average_projection


def test_segmentation_mask_is_recomputed_from_valid_masks(exp, stored):
    valid_masks = stored["image_mask"][stored["valid"]]
    image = exp.segmentation_mask_image
    assert image.data.dtype == np.int64 and image.data.shape == (64, 64)
    # the fixture's ROIs do not overlap: the union equals the sum of the valid masks
    assert np.array_equal(image.data, valid_masks.sum(axis=0))
    assert not np.array_equal(image.data, stored["image_mask"].sum(axis=0))  # invalid dropped
    assert image.spacing == exp.max_projection.spacing and image.unit == "mm"
    assert exp.get_segmentation_mask_image() is image


# -------------------------------------------------------------------- the cell table


def test_cell_table_keeps_valid_rois_in_file_order(exp, stored):
    table = exp.cell_specimen_table
    valid = stored["valid"]
    assert list(table.columns) == [
        "cell_roi_id", "height", "mask_image_plane", "max_correction_down",
        "max_correction_left", "max_correction_right", "max_correction_up", "valid_roi",
        "width", "x", "y", "roi_mask",
    ]  # fmt: skip
    assert table.index.name == "cell_specimen_id" and table.index.dtype == np.int64
    assert table.index.tolist() == stored["cell_specimen_id"][valid].tolist()
    assert table["cell_roi_id"].tolist() == stored["id"][valid].tolist()
    assert len(table) == 6 and table["valid_roi"].all()
    for name in stored["colnames"]:
        if name not in ("cell_specimen_id", "image_mask"):
            assert np.array_equal(table[name].to_numpy(), stored[name][valid]), name
    for mask, want in zip(table["roi_mask"], stored["image_mask"][valid], strict=True):
        assert mask.dtype == bool and mask.shape == (64, 64) and np.array_equal(mask, want)
    masks = exp.roi_masks
    assert list(masks.columns) == ["cell_roi_id", "roi_mask"]
    assert masks.index.equals(table.index) and masks["cell_roi_id"].equals(table["cell_roi_id"])


def test_invalid_rois_kept_when_asked():
    with open_experiment(EXPERIMENT, exclude_invalid_rois=False) as everything:
        assert len(everything.cell_specimen_table) == 8
        assert len(everything.dff_traces) == 8 and len(everything.events) == 8
        assert not everything.cell_specimen_table["valid_roi"].all()


# -------------------------------------------------------------------- traces and events


@pytest.mark.parametrize("attribute", list(SERIES))
def test_traces_are_the_valid_columns_of_the_stored_series(exp, stored, attribute):
    frame = getattr(exp, attribute)
    column = SERIES[attribute][1]
    assert list(frame.columns[:2]) == ["cell_roi_id", column]
    assert frame.index.equals(exp.cell_specimen_table.index)
    assert frame["cell_roi_id"].tolist() == stored["id"][stored["valid"]].tolist()
    rows = np.vstack(frame[column].to_list())
    assert rows.dtype == np.float32 and rows.shape == (6, 1500)  # stored dtype kept
    assert np.array_equal(rows, stored[attribute][:, stored["valid"]].T)


def test_corrected_fluorescence_has_fit_columns(exp, stored):
    frame = exp.corrected_fluorescence_traces
    assert list(frame.columns) == ["cell_roi_id", "corrected_fluorescence", "r", "RMSE"]
    assert np.array_equal(frame["r"].to_numpy(), stored["r"][stored["valid"]])
    assert np.array_equal(frame["RMSE"].to_numpy(), stored["RMSE"][stored["valid"]])


def test_neuropil_traces_are_neuropil_not_demixed(exp, stored):
    neuropil = np.vstack(exp.neuropil_traces["neuropil_trace"].to_list())
    demixed = np.vstack(exp.demixed_traces["demixed_trace"].to_list())
    assert not np.array_equal(neuropil, demixed)
    assert np.array_equal(neuropil, stored["neuropil_traces"][:, stored["valid"]].T)


def test_events_with_causal_halfnorm_filter(exp, stored):
    events = exp.events
    columns = ["cell_roi_id", "events", "filtered_events", "lambda", "noise_std"]
    assert list(events.columns) == columns
    assert events.index.equals(exp.cell_specimen_table.index)
    # the fixture's region is every ROI in table order
    valid = stored["valid"]
    raw = stored["events_data"][:, valid].T
    assert np.array_equal(np.vstack(events["events"].to_list()), raw)
    filtered = np.vstack(events["filtered_events"].to_list())
    assert filtered.dtype == np.float64 and filtered.shape == raw.shape and raw.any()
    np.testing.assert_allclose(filtered, reference_filter(raw, 2 / 31 * stored["rate"]), atol=1e-12)
    assert np.array_equal(events["lambda"].to_numpy(), stored["events_lambdas"][valid])
    assert np.array_equal(events["noise_std"].to_numpy(), stored["events_noise_stds"][valid])


def test_events_filter_options(stored):
    options = {"events_filter_scale_seconds": 0.2, "events_filter_n_time_steps": 7}
    with open_experiment(EXPERIMENT, **options) as wide:
        filtered = np.vstack(wide.events["filtered_events"].to_list())
        raw = np.vstack(wide.events["events"].to_list())
    np.testing.assert_allclose(filtered, reference_filter(raw, 0.2 * stored["rate"], 7), atol=1e-12)
    with open_experiment(EXPERIMENT, events_filter_n_time_steps=1) as none:
        frame = none.events
        assert np.array_equal(np.vstack(frame["filtered_events"].to_list()), raw)
    with open_experiment(EXPERIMENT, events_filter_n_time_steps=0) as bad, pytest.raises(VboError):
        _ = bad.events


def test_hard_layout_matches_allensdks_rules(tmp_path, stored):
    """-1 specimen ids, overlapping valid masks, events for a permuted subset of ROIs."""
    region = np.array([7, 5, 3, 2, 1, 0, 6])  # ROI 4 (valid) has no events

    def edit(f):
        table = f[TABLE]
        specimen = table["cell_specimen_id"][()]
        specimen[[1, 3]] = -1  # one invalid, one valid ROI without a specimen id
        table["cell_specimen_id"][...] = specimen
        masks = table["image_mask"][()]
        masks[2, 0:3, 0:6] = True  # valid ROI 2 now overlaps valid ROI 0
        table["image_mask"][...] = masks
        group = f[EVENTS]
        recreate(group, "data", stored["events_data"][:, region], compression="gzip")
        recreate(group, "lambdas", stored["events_lambdas"][region])
        recreate(group, "noise_stds", stored["events_noise_stds"][region])
        recreate(group, "rois", region)

    with open_experiment(edited(tmp_path, edit)) as hard:
        table = hard.cell_specimen_table
        # as AllenSDK: -1 -> None over the whole table, pandas makes that float64 with NaN
        assert table.index.dtype == np.float64 and np.isnan(table.index[2])
        assert hard.dff_traces.index.equals(table.index)
        overlap = hard.segmentation_mask_image.data
        assert overlap.max() == 1 and overlap[0, 0:3].all()  # a union, as AllenSDK's sum of bools
        with pytest.warns(UserWarning, match="roi ids not in Events"):
            events = hard.events
        assert events["cell_roi_id"].tolist() == [14000, 14002, 14003, 14005, 14007]
        column = {roi: i for i, roi in enumerate(stored["id"][region])}
        rows = zip(events["cell_roi_id"], events["events"], events["lambda"], strict=True)
        for roi, row, lam in rows:
            assert np.array_equal(row, stored["events_data"][:, region][:, column[roi]])
            assert lam == stored["events_lambdas"][region][column[roi]]


def test_all_ids_unassigned_is_object_index_and_legacy_error(tmp_path):
    def edit(f):
        f[f"{TABLE}/cell_specimen_id"][...] = -1

    with open_experiment(edited(tmp_path, edit)) as unmatched:
        index = unmatched.cell_specimen_table.index
        assert index.dtype == object and all(v is None for v in index)
        with (
            pytest.warns(VisibleDeprecationWarning),
            pytest.raises(VboError, match="not assigned"),
        ):
            unmatched.get_cell_specimen_ids()


# -------------------------------------------------------------------- the rest


def test_ids_timestamps_motion_correction(exp, stored):
    assert exp.ophys_experiment_id == 900000013 and isinstance(exp.ophys_experiment_id, int)
    assert exp.ophys_session_id == 700000013
    assert np.array_equal(exp.ophys_timestamps, stored["timestamps"])
    motion = exp.motion_correction
    assert list(motion.columns) == ["x", "y"] and isinstance(motion.index, pd.RangeIndex)
    assert np.array_equal(motion["x"], stored["motion_x"])
    assert np.array_equal(motion["y"], stored["motion_y"])


def test_metadata_is_allensdks_28_keys(exp):
    meta = exp.metadata
    assert list(meta) == [
        "equipment_name", "sex", "age_in_days", "stimulus_frame_rate", "session_type",
        "date_of_acquisition", "reporter_line", "cre_line", "behavior_session_uuid",
        "driver_line", "mouse_id", "project_code", "full_genotype", "behavior_session_id",
        "indicator", "emission_lambda", "excitation_lambda", "ophys_container_id",
        "field_of_view_height", "field_of_view_width", "imaging_depth",
        "targeted_imaging_depth", "imaging_plane_group", "imaging_plane_group_count",
        "ophys_experiment_id", "ophys_frame_rate", "ophys_session_id", "targeted_structure",
    ]  # fmt: skip
    assert meta["indicator"] == "GCaMP6f"  # parsed from 'Ai148(TIT2L-GC6f-ICL-tTA2)'
    assert (meta["emission_lambda"], meta["excitation_lambda"]) == (520.0, 910.0)
    assert meta["ophys_frame_rate"] == 31.0 and meta["targeted_structure"] == "VISp"
    assert meta["imaging_plane_group"] is None and meta["imaging_plane_group_count"] == 0
    assert (meta["ophys_experiment_id"], meta["ophys_session_id"]) == (900000013, 700000013)
    assert meta["ophys_container_id"] == 1000000013 and meta["imaging_depth"] == 150
    assert meta["project_code"] == "VisualBehavior"
    when = meta["date_of_acquisition"]
    assert when.utcoffset().total_seconds() == 0 and when.year == 2019


def test_legacy_methods_warn_and_return_allensdks_shapes(exp):
    with pytest.warns(VisibleDeprecationWarning, match="legacy API"):
        ids = exp.get_cell_specimen_ids()
    assert ids.tolist() == exp.cell_specimen_table.index.tolist()
    with pytest.warns(VisibleDeprecationWarning):
        assert exp.get_cell_specimen_indices([ids[3], ids[0]]) == [3, 0]
    with pytest.warns(VisibleDeprecationWarning, match="dff_traces"):
        times, dff = exp.get_dff_traces()
    assert times is exp.ophys_timestamps and dff.shape == (6, 1500) and dff.dtype == np.float32
    with pytest.warns(VisibleDeprecationWarning):
        _, two = exp.get_dff_traces([ids[4], ids[1]])
    assert np.array_equal(two, dff[[1, 4]])  # table order, as AllenSDK
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(VboError):
            exp.get_dff_traces([12345])
        with pytest.raises(VboError):
            exp.get_cell_specimen_indices([12345])


def test_multiplane_timestamps_and_metadata(tmp_path, stored):
    longer = np.concatenate([stored["timestamps"], [99.0, 99.1]])

    def single(f):
        recreate(f[f"{OPHYS}/dff/traces"], "timestamps", longer)

    with open_experiment(edited(tmp_path / "single", single)) as sentinels:
        assert np.array_equal(sentinels.ophys_timestamps, stored["timestamps"])

    def multi(f):
        single(f)
        f["general/metadata"].attrs["imaging_plane_group"] = 1
        f["general/metadata"].attrs["imaging_plane_group_count"] = 4

    with open_experiment(edited(tmp_path / "multi", multi)) as plane:
        assert plane.metadata["imaging_plane_group"] == 1
        assert plane.metadata["imaging_plane_group_count"] == 4
        with pytest.raises(VboError) as exc:
            _ = plane.ophys_timestamps
        one_line_naming(exc, "multiplane")


# -------------------------------------------------------------------- laziness and lifecycle


def record_reads(experiment) -> list[str]:
    reader = experiment._reader
    paths: list[str] = []
    real = reader.read

    def read(path):
        paths.append(path.strip("/"))
        return real(path)

    reader.read = read
    return paths


@pytest.mark.parametrize(
    ("attribute", "needs", "never"),
    [
        ("max_projection", {"images/max_projection"}, {"image_mask", "traces", "event"}),
        ("dff_traces", {"dff/traces/data", f"{TABLE}/id"}, {"image_mask", "event", "images"}),
        ("events", {f"{EVENTS}/data", f"{EVENTS}/rois"}, {"image_mask", "traces", "images"}),
        ("neuropil_traces", {"neuropil_trace/traces/data"}, {"image_mask", "demixed", "dff"}),
        ("segmentation_mask_image", {f"{TABLE}/image_mask"}, {"traces", "event", "images"}),
        ("ophys_timestamps", {"dff/traces/timestamps"}, {"data", "image_mask"}),
        ("metadata", {"imaging_rate"}, {"traces", "image_mask", "event", "images"}),
    ],
)
def test_attribute_reads_only_its_own_datasets(attribute, needs, never):
    with open_experiment(EXPERIMENT) as fresh:
        paths = record_reads(fresh)
        getattr(fresh, attribute)
        assert all(any(path.endswith(n) for path in paths) for n in needs), paths
        assert not [p for p in paths if any(part in p for part in never)], paths
        assert len(paths) == len(set(paths))  # each dataset read once
        before = len(paths)
        getattr(fresh, attribute)
        assert len(paths) == before  # kept


def test_trace_families_share_one_read_of_the_table_ids():
    with open_experiment(EXPERIMENT) as fresh:
        paths = record_reads(fresh)
        _ = fresh.dff_traces, fresh.events, fresh.demixed_traces
        assert paths.count(f"{TABLE}/id") == 1 and paths.count(f"{TABLE}/valid_roi") == 1


def test_max_projection_needs_neither_pandas_nor_pynwb():
    code = (
        "import sys; from intake_vbo.nwb import open_experiment; "
        f"e = open_experiment({str(EXPERIMENT)!r}); e.max_projection; "
        "print(sorted(m for m in ('pandas', 'pynwb', 'hdmf', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_closed_keeps_read_attributes_and_refuses_new_ones():
    experiment = open_experiment(EXPERIMENT)
    dff = experiment.dff_traces
    experiment.close()
    assert experiment.closed and experiment.dff_traces is dff
    with pytest.raises(VboError) as exc:
        _ = experiment.events
    one_line_naming(exc, str(EXPERIMENT))


def test_file_like_object(stored):
    with open(EXPERIMENT, "rb") as handle:
        buffer = io.BytesIO(handle.read())
    with open_experiment(buffer) as from_memory:
        assert np.array_equal(from_memory.max_projection.data, stored["max_projection"])
        assert len(from_memory.dff_traces) == 6


def test_no_reference_cycles_keep_arrays_alive():
    gc.disable()
    try:
        experiment = open_experiment(EXPERIMENT)
        base = experiment.dff_traces["dff"].iloc[0].base
        _ = experiment.events, experiment.cell_specimen_table, experiment.metadata
        alive = weakref.ref(experiment), weakref.ref(base)
        experiment.close()
        del experiment, base
        assert [ref() for ref in alive] == [None, None]  # freed by reference counting alone
    finally:
        gc.enable()


# -------------------------------------------------------------------- missing parts, bad files


def test_missing_optional_parts_give_none_or_fewer_columns(tmp_path):
    def edit(f):
        for group in ("demixed_trace", "neuropil_trace", "event_detection",
                      "corrected_fluorescence/r", "ophys_motion_correction_x"):  # fmt: skip
            del f[f"{OPHYS}/{group}"]

    with open_experiment(edited(tmp_path, edit)) as partial:
        assert partial.demixed_traces is None and partial.neuropil_traces is None
        assert partial.events is None and partial.motion_correction is None
        frame = partial.corrected_fluorescence_traces
        assert list(frame.columns) == ["cell_roi_id", "corrected_fluorescence"]
        assert len(partial.dff_traces) == 6 and partial.metadata["indicator"] == "GCaMP6f"


def test_missing_images_and_corrected_traces(tmp_path):
    def edit(f):
        del f[f"{OPHYS}/images"]
        del f[f"{OPHYS}/corrected_fluorescence"]

    with open_experiment(edited(tmp_path, edit)) as bare:
        assert bare.max_projection is None and bare.average_projection is None
        assert bare.corrected_fluorescence_traces is None
        assert bare.segmentation_mask_image.spacing is None
        assert bare.segmentation_mask_image.data.sum() == 96


def test_behavior_only_file_is_one_line_error():
    if not SESSION.is_file():
        pytest.skip("no behavior fixture")
    with pytest.raises(VboError) as exc:
        open_experiment(SESSION)
    one_line_naming(exc, str(SESSION))
    assert "processing/ophys" in str(exc.value)


def test_not_nwb_and_missing_files_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.nwb"
    junk.write_bytes(b"not hdf5 at all")
    for path in (junk, tmp_path / "absent.nwb"):
        with pytest.raises(VboError) as exc:
            open_experiment(path)
        one_line_naming(exc, str(path))


def test_traces_of_the_wrong_width_are_one_line_error(tmp_path, stored):
    def edit(f):
        recreate(f[f"{OPHYS}/dff/traces"], "data", stored["dff_traces"][:, :5])

    with open_experiment(edited(tmp_path, edit)) as broken:
        with pytest.raises(VboError) as exc:
            _ = broken.dff_traces
        one_line_naming(exc, "dff/traces")
        assert len(broken.demixed_traces) == 6  # the other families still read


# -------------------------------------------------------------------- parity with AllenSDK

DATA = Path(__file__).resolve().parent / "data" / "allensdk_experiment_900000013.json"


@pytest.fixture(scope="module")
def allensdk():
    if not DATA.is_file():
        pytest.skip("no AllenSDK expectations")
    from allensdk_expected import load_expected

    return load_expected(DATA.name)


@pytest.mark.parametrize("name", OPHYS_ATTRIBUTES)
def test_same_as_allensdk(exp, allensdk, name):
    from allensdk_expected import check_attribute

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VisibleDeprecationWarning)
        check_attribute(exp, name, allensdk["attributes"][name], f"experiment.{name}")


def test_names_same_as_allensdk(exp, allensdk):
    want = [n for n in allensdk["list_data_attributes_and_methods"] if n not in allensdk["skipped"]]
    assert exp.list_data_attributes_and_methods() == want


def test_neuropil_traces_differ_from_allensdk_only_by_its_bug(exp, allensdk, stored):
    """AllenSDK 2.16.2 serves the demixed traces as neuropil_traces; we serve the neuropil."""
    from allensdk_expected import assert_same

    expected = allensdk["attributes"]["neuropil_traces"]["value"]
    assert [c["name"] for c in expected["columns"]] == ["cell_roi_id", "demixed_trace"]
    assert_same(exp.demixed_traces, expected, "demixed_traces as AllenSDK's neuropil_traces")
    ours = exp.neuropil_traces
    assert ours.index.equals(exp.demixed_traces.index)
    assert ours["cell_roi_id"].equals(exp.demixed_traces["cell_roi_id"])
    assert list(ours.columns) == ["cell_roi_id", "neuropil_trace"]

"""The metadata tables' names, index columns and declared column types.

One schema per table covers every column any release version has had; a version may
lack any of them but the index, and columns not declared here are kept by inference
(see :mod:`intake_vbo.catalog.tables`).
"""

from __future__ import annotations

import pyarrow as pa

# A metadata CSV's name in a manifest -> our table name.
CSV_TABLES = {
    "behavior_session_table": "behavior_sessions",
    "ophys_session_table": "ophys_sessions",
    "ophys_experiment_table": "ophys_experiments",
    "ophys_cells_table": "ophys_cells",
}
# Our metadata table -> its index column.
INDEX = {
    "behavior_sessions": "behavior_session_id",
    "ophys_sessions": "ophys_session_id",
    "ophys_experiments": "ophys_experiment_id",
    "ophys_cells": "cell_roi_id",
}

# The index's versioned tables, in the order they are written; each has manifest_version.
INDEX_TABLES = ("manifests", "metadata_files", "files", *INDEX)
# The tables a version catalog serves as sources.
CATALOG_TABLES = (*INDEX, "files")
# The per-file tables of an NWB file of each kind: the analysis objects' attributes the
# per-file sources serve (their columns: intake_vbo.drivers.tablemeta). An experiment
# file has every table of a session too.
SESSION_TABLES = ("trials", "stimulus_presentations", "running_speed", "raw_running_speed",
                  "licks", "rewards", "eye_tracking", "stimulus_templates")  # fmt: skip
EXPERIMENT_TABLES = ("dff_traces", "events", "cell_specimen_table",
                     "corrected_fluorescence_traces", "demixed_traces", "neuropil_traces",
                     "roi_masks", "motion_correction")  # fmt: skip
FILE_TABLES = {
    "ophys_experiment": (*EXPERIMENT_TABLES, *SESSION_TABLES),
    "behavior_session": SESSION_TABLES,
}

INT = pa.int64()
TEXT = pa.string()
BOOL = pa.bool_()
DATE = pa.timestamp("us", tz="UTC")
INTS = pa.list_(pa.int64())
TEXTS = pa.list_(pa.string())

# Columns every session-like table shares.
_SESSION = {
    **dict.fromkeys(["mouse_id", "indicator", "full_genotype", "cre_line", "reporter_line"], TEXT),
    **dict.fromkeys(["sex", "project_code", "session_type", "image_set", "behavior_type"], TEXT),
    **dict.fromkeys(["experience_level", "equipment_name", "file_path"], TEXT),
    **dict.fromkeys(["behavior_session_id", "ophys_session_id", "age_in_days", "file_id"], INT),
    **dict.fromkeys(["session_number", "imaging_plane_group_count", "num_depths_per_area"], INT),
    **{f"prior_exposures_to_{x}": INT for x in ("session_type", "image_set", "omissions")},
    "num_targeted_structures": INT,
    "ophys_container_id": INTS,
    "ophys_experiment_id": INTS,
    "driver_line": TEXTS,
    "date_of_acquisition": DATE,
}
# Added to the behavior session table in 1.1.0.
_TRIAL_COUNTS = dict.fromkeys(
    [f"{x}_count" for x in ("trial", "go_trial", "catch_trial", "hit_trial", "miss_trial")]
    + ["false_alarm_trial_count", "correct_reject_trial_count", "engaged_trial_count"],
    INT,
)
_EXPERIMENT = {
    **_SESSION,
    "ophys_experiment_id": INT,
    "ophys_container_id": INT,
    "imaging_depth": INT,
    "targeted_structure": TEXT,
    "targeted_imaging_depth": INT,
    "imaging_plane_group": INT,
    "passive": BOOL,
}
_CELLS = {"cell_roi_id": INT, "cell_specimen_id": INT, "ophys_experiment_id": INT}

SCHEMAS: dict[str, pa.Schema] = {
    "behavior_sessions": pa.schema({**_SESSION, **_TRIAL_COUNTS}),
    "ophys_sessions": pa.schema(_SESSION),
    "ophys_experiments": pa.schema(_EXPERIMENT),
    "ophys_cells": pa.schema(_CELLS),
}

# AllenSDK's VBO_METADATA_COLUMN_ORDER: the order its DataFrames show these columns in.
ALLENSDK_ORDER = [
    *("behavior_session_id", "ophys_session_id", "ophys_container_id", "mouse_id"),
    *("indicator", "full_genotype", "driver_line", "cre_line", "reporter_line", "sex"),
    *("age_in_days", "imaging_depth", "targeted_structure", "targeted_imaging_depth"),
    *("imaging_plane_group_count", "imaging_plane_group", "project_code", "session_type"),
    *("session_number", "image_set", "behavior_type", "passive", "experience_level"),
    *("prior_exposures_to_session_type", "prior_exposures_to_image_set"),
    *("prior_exposures_to_omissions", "date_of_acquisition", "equipment_name"),
    *("num_depths_per_area", "ophys_experiment_id", "num_targeted_structures"),
    *("published_at", "isi_experiment_id"),
]

# The index's own tables, one row per data file, per metadata file, per manifest.
_OBJECT = {"key": TEXT, "url": TEXT, "version_id": TEXT, "file_hash": TEXT}
FILES_SCHEMA = pa.schema(
    {"file_id": INT, "kind": TEXT, "behavior_session_id": INT, "ophys_experiment_id": INT} | _OBJECT
)
METADATA_FILES_SCHEMA = pa.schema({"name": TEXT, "table_name": TEXT} | _OBJECT | {"num_rows": INT})
MANIFESTS_SCHEMA = pa.schema(
    {
        "project_name": TEXT,
        "key": TEXT,
        "etag": TEXT,
        "file_hash": TEXT,
        "metadata_file_id_column_name": TEXT,
        "data_pipeline": TEXT,
        "num_data_files": INT,
        "metadata_tables": TEXTS,
    }
)

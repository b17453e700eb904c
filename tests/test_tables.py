"""Metadata CSVs -> typed Arrow tables and AllenSDK-shaped DataFrames.

Parity: every cell of the three real tables (../shared/real-tables) against a
re-implementation of AllenSDK 2.16's reading (BehaviorProjectCloudApi._get_*_table).
Quirks and bad input: small CSVs written here in the release's own format.
"""

from __future__ import annotations

import ast
import io
import math

import pandas as pd
import pyarrow as pa
import pytest
from shared import REAL_TABLES

from intake_vbo.base.errors import VboError
from intake_vbo.catalog.schema import CSV_TABLES, INDEX, SCHEMAS
from intake_vbo.catalog.tables import read_table
from intake_vbo.drivers.frames import to_pandas

REAL_FILES = ["behavior_session_table", "ophys_session_table", "ophys_experiment_table"]

# --- AllenSDK 2.16, re-implemented (allensdk is not installable here) --------------------
# behavior_project_cloud_api.py: COL_EVAL_LIST; project_constants.py: VBO_INTEGER_COLUMNS
# and VBO_METADATA_COLUMN_ORDER; core/dataframe_utils.py: enforce_df_int_typing.
COL_EVAL_LIST = ["ophys_experiment_id", "ophys_container_id", "driver_line"]
VBO_INTEGER_COLUMNS = [
    *("session_number", "age_in_days", "prior_exposures_to_image_set"),
    *("prior_exposures_to_session_type", "prior_exposures_to_omissions", "ophys_session_id"),
    *("imaging_plane_group_count", "imaging_plane_group", "targeted_areas"),
    *("num_depths_per_area", "num_targeted_structures", "cell_specimen_id"),
]
# pandas 1.5.3 (which AllenSDK 2.16 pins) did not yet read "None" as NaN.
PANDAS_15_NA = [
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"),
]


def allensdk_table(data: bytes, table: str) -> pd.DataFrame:
    """What AllenSDK 2.16's get_*_table() returns for these CSV bytes."""
    read = {"keep_default_na": False, "na_values": PANDAS_15_NA}
    if table == "ophys_cells":
        df = literal_col_eval(pd.read_csv(io.BytesIO(data), **read))
        df["cell_specimen_id"] = pd.array(df["cell_specimen_id"], dtype="Int64")
        return df.set_index("cell_roi_id")
    df = literal_col_eval(pd.read_csv(io.BytesIO(data), dtype={"mouse_id": str}, **read))
    # pandas 1.5 parsed each string on its own; pandas >= 2 needs format="mixed" to.
    df["date_of_acquisition"] = pd.to_datetime(df["date_of_acquisition"], utc=True, format="mixed")
    for col in VBO_INTEGER_COLUMNS:
        if col in df.columns:
            df[col] = df[col].astype("Int64")
    return df.set_index(INDEX[table])


def literal_col_eval(df: pd.DataFrame) -> pd.DataFrame:
    for col in COL_EVAL_LIST:
        if col in df.columns:
            values = df[col].astype(object)
            df[col] = [ast.literal_eval(v) if isinstance(v, str) else v for v in values]
    return df


def plain(value):
    """A cell as a comparable Python value: one null, ints for integral floats."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else int(value) if value.is_integer() else value
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").as_unit("ns")
    return value.item() if hasattr(value, "item") else value


def assert_same_cells(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert ours.index.name == ref.index.name
    assert ours.index.tolist() == ref.index.tolist()
    assert sorted(ours.columns) == sorted(ref.columns)
    for col in ref.columns:
        mine = [plain(v) for v in ours[col].tolist()]
        theirs = [plain(v) for v in ref[col].tolist()]
        assert mine == theirs, f"column {col} differs"


def assert_dtypes(frame: pd.DataFrame, arrow: pa.Table) -> None:
    """Integers Int64, lists of Python ints/strs, dates UTC, booleans bool, text str."""
    for field in arrow.schema:
        if field.name not in frame.columns:
            continue
        series, kind = frame[field.name], field.type
        if pa.types.is_integer(kind):
            assert series.dtype == "Int64", field.name
        elif pa.types.is_list(kind):
            item = int if pa.types.is_integer(kind.value_type) else str
            lists = [v for v in series if isinstance(v, list)]
            assert lists and all(isinstance(i, item) for v in lists for i in v), field.name
        elif pa.types.is_timestamp(kind):
            assert str(series.dtype) in ("datetime64[us, UTC]", "datetime64[ns, UTC]")
        elif pa.types.is_boolean(kind):
            assert series.dtype in (bool, "boolean"), field.name
        elif pa.types.is_string(kind):
            assert pd.api.types.is_string_dtype(series.dtype), field.name


def real(name: str) -> bytes:
    path = REAL_TABLES / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path.read_bytes()


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_tables_match_allensdk_in_every_cell(name):
    data, table = real(name), CSV_TABLES[name]
    arrow = read_table(table, data, f"{name}.csv")
    ours, ref = to_pandas(table, arrow), allensdk_table(data, table)
    assert_same_cells(ours, ref)
    assert_dtypes(ours, arrow)
    # Every column we know has its declared type; the CSV's column order is kept.
    header = data.split(b"\n", 1)[0].decode().split(",")
    assert arrow.column_names == header
    for field in arrow.schema:
        assert field.type == SCHEMAS[table].field(field.name).type, field.name


def test_real_tables_types_of_the_quirky_columns():
    behavior = read_table("behavior_sessions", real("behavior_session_table"), "b")
    experiments = read_table("ophys_experiments", real("ophys_experiment_table"), "e")
    sessions = read_table("ophys_sessions", real("ophys_session_table"), "s")
    assert behavior.schema.field("ophys_session_id").type == pa.int64()  # "951410079.0"
    assert behavior.column("ophys_session_id").null_count > 0
    assert set(behavior.column("file_id").to_pylist()) == {-999}
    assert behavior.schema.field("date_of_acquisition").type == pa.timestamp("us", "UTC")
    assert experiments.schema.field("imaging_plane_group").type == pa.int64()  # "0.0"
    assert experiments.schema.field("passive").type == pa.bool_()
    assert experiments.schema.field("ophys_container_id").type == pa.int64()
    assert sessions.schema.field("ophys_container_id").type == pa.list_(pa.int64())
    assert sessions.schema.field("mouse_id").type == pa.string()


# --- Quirks, in small CSVs written in the release's format ------------------------------

SESSIONS_HEADER = (
    "ophys_session_id,behavior_session_id,ophys_container_id,mouse_id,full_genotype,"
    "driver_line,age_in_days,date_of_acquisition,imaging_plane_group_count,"
    "ophys_experiment_id"
)
SESSIONS_ROWS = [
    '951410079,951520319,"[1018028339, 1018028342]",457841,Sst-IRES-Cre/wt,'
    "['Sst-IRES-Cre'],206,2019-09-20 09:59:38.837000,4.0,\"[951980471, 951980473]\"",
    "952430817,952554548,[1018028339],457841,Sst-IRES-Cre/wt,['Sst-IRES-Cre'],209,"
    "2019-09-23 08:45:38+00:00,,[953659743]",
    "953659743,953659800,[],0457842,Gad2-IRES-Cre/wt;Ai148 – ΔF/F µ,"
    "\"['Slc17a7-IRES2-Cre', 'Camk2a-tTA']\",90,2019-09-24 08:45:38.490000+00:00,2.0,",
]


def csv_bytes(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def test_sessions_quirks_types_and_values():
    arrow = read_table("ophys_sessions", csv_bytes(SESSIONS_HEADER, SESSIONS_ROWS), "s.csv")
    assert arrow.column_names == SESSIONS_HEADER.split(",")  # missing columns are fine
    col = arrow.column
    assert col("ophys_container_id").to_pylist() == [[1018028339, 1018028342], [1018028339], []]
    assert col("ophys_experiment_id").to_pylist() == [[951980471, 951980473], [953659743], None]
    assert col("driver_line").to_pylist()[2] == ["Slc17a7-IRES2-Cre", "Camk2a-tTA"]
    assert col("mouse_id").to_pylist() == ["457841", "457841", "0457842"]  # text, zeros kept
    assert col("full_genotype")[2].as_py() == "Gad2-IRES-Cre/wt;Ai148 – ΔF/F µ"
    assert col("imaging_plane_group_count").to_pylist() == [4, None, 2]
    assert col("imaging_plane_group_count").type == pa.int64()
    # Naive means UTC; offsets and missing fractions mix in one column.
    assert col("date_of_acquisition").to_pylist() == [
        pd.Timestamp("2019-09-20 09:59:38.837", tz="UTC"),
        pd.Timestamp("2019-09-23 08:45:38", tz="UTC"),
        pd.Timestamp("2019-09-24 08:45:38.49", tz="UTC"),
    ]


def test_sessions_quirks_match_allensdk():
    data = csv_bytes(SESSIONS_HEADER, SESSIONS_ROWS)
    arrow = read_table("ophys_sessions", data, "s.csv")
    frame = to_pandas("ophys_sessions", arrow)
    assert_same_cells(frame, allensdk_table(data, "ophys_sessions"))
    assert_dtypes(frame, arrow)
    assert frame.loc[953659743, "full_genotype"] == "Gad2-IRES-Cre/wt;Ai148 – ΔF/F µ"
    assert frame.loc[953659743, "ophys_container_id"] == []
    assert isinstance(frame.loc[952430817, "ophys_experiment_id"], list)


EXPERIMENTS_HEADER = (
    "ophys_experiment_id,behavior_session_id,ophys_session_id,ophys_container_id,"
    "imaging_plane_group,passive,date_of_acquisition,file_id,file_path"
)


def test_experiment_container_is_an_int_and_file_ids_stay_negative():
    rows = [
        "951980471,951520319,951410079,1018028342,0.0,False,2019-09-20 09:59:38.837000,-999,/a",
        "951980473,951520319,951410079,1018028345,,True,2019-09-20 09:59:38,1941,/b",
    ]
    data = csv_bytes(EXPERIMENTS_HEADER, rows)
    arrow = read_table("ophys_experiments", data, "e.csv")
    assert arrow.schema.field("ophys_container_id").type == pa.int64()
    assert arrow.column("ophys_container_id").to_pylist() == [1018028342, 1018028345]
    assert arrow.column("file_id").to_pylist() == [-999, 1941]
    assert arrow.column("imaging_plane_group").to_pylist() == [0, None]
    assert arrow.column("passive").to_pylist() == [False, True]
    frame = to_pandas("ophys_experiments", arrow)
    assert_same_cells(frame, allensdk_table(data, "ophys_experiments"))
    assert frame["passive"].dtype == bool


def test_unknown_columns_are_kept_and_typed_by_inference():
    header = "behavior_session_id,new_count,new_ids,new_names,new_flag,new_ratio,new_note,new_empty"
    rows = [
        "1,3.0,\"[1, 2]\",['a'],True,0.5,x,",
        "2,,[],\"['b', 'c']\",False,1.25,ü,",
    ]
    arrow = read_table("behavior_sessions", csv_bytes(header, rows), "b.csv")
    types = {f.name: f.type for f in arrow.schema}
    assert types["new_count"] == pa.int64()
    assert types["new_ids"] == pa.list_(pa.int64())
    assert types["new_names"] == pa.list_(pa.string())
    assert types["new_flag"] == pa.bool_()
    assert types["new_ratio"] == pa.float64()
    assert types["new_note"] == pa.string()
    assert types["new_empty"] == pa.float64()  # all empty: pandas' float64 NaN
    assert arrow.column("new_count").to_pylist() == [3, None]
    assert arrow.column("new_names").to_pylist() == [["a"], ["b", "c"]]
    assert arrow.column("new_note").to_pylist() == ["x", "ü"]


def test_missing_column_is_not_an_error_and_order_is_kept():
    header = "behavior_session_id,file_id,mouse_id,date_of_acquisition"
    rows = ["5,-999,457841,2019-05-17 14:46:33+00:00"]
    arrow = read_table("behavior_sessions", csv_bytes(header, rows), "b.csv")
    assert arrow.column_names == header.split(",")
    assert "ophys_session_id" not in to_pandas("behavior_sessions", arrow).columns


def test_trial_counts_of_release_1_1_0_are_integers():
    counts = [c for c in SCHEMAS["behavior_sessions"].names if c.endswith("_count")]
    assert "engaged_trial_count" in counts and "go_trial_count" in counts
    header = "behavior_session_id," + ",".join(counts)
    rows = ["1," + ",".join(f"{i}.0" for i in range(len(counts))), "2" + "," * len(counts)]
    arrow = read_table("behavior_sessions", csv_bytes(header, rows), "b.csv")
    assert [arrow.column(c).type for c in counts] == [pa.int64()] * len(counts)
    assert [arrow.column(c)[0].as_py() for c in counts] == list(range(len(counts)))
    assert all(arrow.column(c)[1].as_py() is None for c in counts)


def test_lists_outside_the_fast_path_go_through_literal_eval():
    header = "ophys_session_id,ophys_container_id,driver_line"
    rows = [
        '1,"[1,2]","[\'a, b\']"',
        "2,7,\"['O\\'Brien']\"",
        '3,"( 3, 4 )",[]',
    ]
    arrow = read_table("ophys_sessions", csv_bytes(header, rows), "s.csv")
    assert arrow.column("ophys_container_id").to_pylist() == [[1, 2], [7], [3, 4]]
    assert arrow.column("driver_line").to_pylist() == [["a, b"], ["O'Brien"], []]


def test_csv_details_pandas_accepts():
    # A byte-order mark, CRLF line ends, a quoted newline, pandas' NA spellings,
    # and an integer too big for a float to hold exactly.
    text = (
        "\ufeffophys_experiment_id,full_genotype,imaging_depth,file_id\r\n"
        '1,"two\nlines",NA,9007199254740993\r\n'
        "2,n/a,175,-999\r\n"
    )
    arrow = read_table("ophys_experiments", text.encode(), "e.csv")
    assert arrow.column_names[0] == "ophys_experiment_id"
    assert arrow.column("full_genotype").to_pylist() == ["two\nlines", None]
    assert arrow.column("imaging_depth").to_pylist() == [None, 175]
    assert arrow.column("file_id").to_pylist() == [9007199254740993, -999]


def test_cells_table_matches_allensdk():
    header = "cell_roi_id,cell_specimen_id,ophys_experiment_id"
    rows = ["1080000001,1086490000.0,951980471", "1080000002,,951980471", "1080000003,5.0,2"]
    data = csv_bytes(header, rows)
    arrow = read_table("ophys_cells", data, "c.csv")
    assert arrow.column("cell_specimen_id").to_pylist() == [1086490000, None, 5]
    frame = to_pandas("ophys_cells", arrow)
    assert_same_cells(frame, allensdk_table(data, "ophys_cells"))
    assert list(frame.columns) == ["cell_specimen_id", "ophys_experiment_id"]


def test_to_pandas_after_a_parquet_round_trip(tmp_path):
    import pyarrow.parquet as pq

    data = csv_bytes(SESSIONS_HEADER, SESSIONS_ROWS)
    arrow = read_table("ophys_sessions", data, "s.csv")
    version = pa.array(["1.1.0"] * arrow.num_rows).dictionary_encode()
    pq.write_table(arrow.append_column("manifest_version", version), tmp_path / "t.parquet")
    frame = to_pandas("ophys_sessions", pq.read_table(tmp_path / "t.parquet"))
    assert frame["manifest_version"].astype(str).tolist() == ["1.1.0"] * 3
    assert_same_cells(
        frame.drop(columns="manifest_version"), allensdk_table(data, "ophys_sessions")
    )
    assert_dtypes(frame, arrow)


def test_header_only_is_an_empty_table_of_declared_types():
    arrow = read_table("ophys_cells", b"cell_roi_id,cell_specimen_id\n", "c.csv")
    assert arrow.num_rows == 0
    assert arrow.schema.field("cell_specimen_id").type == pa.int64()


# --- Bad input: one line naming where, and the line and column when there is one -----

WHERE = "ophys_experiment_table.csv (manifest 1.1.0)"
EXP = "ophys_experiment_id,age_in_days,driver_line,date_of_acquisition,passive"
GOOD = "951980471,206,['Sst-IRES-Cre'],2019-09-20 09:59:38.837000,False"


def exp_csv(*rows: str) -> bytes:
    return csv_bytes(EXP, [GOOD, *rows])


BAD = {
    "not utf-8": (exp_csv("2,206,[],,Fals@").replace(b"@", b"\xff"), ["line 3", "UTF-8"]),
    "ragged row": (exp_csv("2,206"), ["line 3", "2 fields", "5"]),
    "abc in an int": (exp_csv("2,abc,[],2019-09-20,False"), ["line 3", "age_in_days", "abc"]),
    "fraction in an int": (exp_csv("2,1.5,[],2019-09-20,False"), ["line 3", "age_in_days"]),
    "broken list": (exp_csv('2,206,"[1, 2",2019-09-20,False'), ["line 3", "driver_line"]),
    "ints in a text list": (exp_csv('2,206,"[1, 2]",2019-09-20,False'), ["line 3", "driver_line"]),
    "bad date": (exp_csv("2,206,[],2019-13-45 10:00:00,False"), ["line 3", "date_of_acquisition"]),
    "bad boolean": (exp_csv("2,206,[],2019-09-20,maybe"), ["line 3", "passive", "maybe"]),
    "duplicate id": (exp_csv("7,1,[],,", "951980471,1,[],,"), ["line 4", "line 2", "951980471"]),
    "empty id": (exp_csv(",1,[],,"), ["line 3", "ophys_experiment_id"]),
    "no index column": (b"age_in_days\n3\n", ["ophys_experiment_id"]),
    "header not utf-8": (b"ophys_experiment_id,s\xffx\n1,2\n", ["line 1", "UTF-8"]),
    "duplicate column": (b"ophys_experiment_id,sex,sex\n1,F,F\n", ["line 1", "sex"]),
    "empty file": (b"", ["empty"]),
    "blank file": (b"\n \r\n", ["empty"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_naming_where_line_and_column(case):
    data, words = BAD[case]
    with pytest.raises(VboError) as caught:
        read_table("ophys_experiments", data, WHERE)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(WHERE + ": ")
    for word in words:
        assert word in message, (word, message)


def test_every_manifest_table_has_a_schema_and_an_index_in_it():
    for table in CSV_TABLES.values():
        assert INDEX[table] in SCHEMAS[table].names

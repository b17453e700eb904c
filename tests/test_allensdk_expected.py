"""The AllenSDK comparer itself (tests/allensdk_expected.py) and the expectation files."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import uuid
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from allensdk_expected import (
    assert_same,
    check_attribute,
    check_object,
    decode,
    load_expected,
)
from shared import FIXTURES

DATA = Path(__file__).resolve().parent / "data"
FILES = {
    "allensdk_experiment_900000013.json": 34,
    "allensdk_session_800000012.json": 16,
    "allensdk_session_of_experiment_900000013.json": 16,
}


def _exporter():
    """tests/data/export_allensdk.py's encoder (it needs only numpy and pandas)."""
    spec = importlib.util.spec_from_file_location("export_allensdk", DATA / "export_allensdk.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


enc = _exporter().enc


@pytest.fixture(scope="module")
def experiment():
    return load_expected("allensdk_experiment_900000013.json")


def attr(doc, name):
    return doc["attributes"][name]["value"]


@pytest.mark.parametrize("name,count", FILES.items())
def test_files_are_complete(name, count):
    doc = load_expected(name)
    assert doc["environment"]["allensdk"] == "2.16.2"
    assert doc["environment"]["PYTHONHASHSEED"] == "0"
    names = [n for n in doc["list_data_attributes_and_methods"] if n not in doc["skipped"]]
    assert len(names) == count
    assert list(doc["attributes"]) == names
    assert (DATA / name).stat().st_size < 300_000


def test_trials_round_trip_and_changes(experiment):
    exp = attr(experiment, "trials")
    trials = decode(exp)
    assert_same(trials, exp, "trials")
    assert_same(trials.copy(deep=True), exp, "trials")

    changed = trials.copy()
    changed.loc[changed.index[3], "start_time"] += 1e-6
    with pytest.raises(AssertionError, match=r"trials\['start_time'\].*label 3"):
        assert_same(changed, exp, "trials")

    tiny = trials.copy()
    tiny["start_time"] = tiny["start_time"] * (1 + 1e-15)
    assert_same(tiny, exp, "trials")

    swapped = trials[[*trials.columns[1::-1], *trials.columns[2:]]]
    with pytest.raises(AssertionError, match="different order"):
        assert_same(swapped, exp, "trials")

    with pytest.raises(AssertionError, match="index name"):
        assert_same(trials.rename_axis("id"), exp, "trials")

    nullable = trials.astype({"change_frame": "Int64"})
    with pytest.raises(AssertionError, match=r"change_frame.*kind integer \(nullable\)"):
        assert_same(nullable, exp, "trials")

    as_float = trials.astype({"change_frame": float})
    with pytest.raises(AssertionError, match="change_frame.*kind float"):
        assert_same(as_float, exp, "trials")

    as_str = trials.astype({"initial_image_name": "str"})  # pandas 3 text: same kind
    assert_same(as_str, exp, "trials")

    text = trials.copy()
    text.loc[text.index[0], "change_image_name"] = "im999"
    with pytest.raises(AssertionError, match="change_image_name.*'im999'"):
        assert_same(text, exp, "trials")


def test_boolean_vs_bool(experiment):
    exp = attr(experiment, "stimulus_presentations")
    sp = decode(exp)
    assert str(sp["omitted"].dtype) == "boolean" and sp["is_change"].dtype == bool
    assert_same(sp, exp, "stimulus_presentations")
    with pytest.raises(AssertionError, match="omitted.*kind bool"):
        assert_same(
            sp.astype({"omitted": bool}, errors="ignore").assign(
                omitted=sp["omitted"].fillna(False).astype(bool)
            ),
            exp,
            "sp",
        )
    with pytest.raises(AssertionError, match="is_change.*kind boolean"):
        assert_same(sp.astype({"is_change": "boolean"}), exp, "sp")
    na = sp.copy()
    na["omitted"] = na["omitted"].fillna(False)
    with pytest.raises(AssertionError, match="omitted.*row 0"):
        assert_same(na, exp, "sp")
    # image_name: NaN for missing in AllenSDK; None or a string dtype is the same "missing"
    # ("str" is one from pandas 3 on; before, astype("str") writes the text 'nan')
    is_string = isinstance(pd.Series(["a"]).astype("str").dtype, pd.StringDtype)
    for dtype in ["string", "str"] if is_string else ["string"]:
        assert_same(sp.astype({"image_name": dtype}), exp, "sp")


def test_arrays_full_and_summarised():
    rng = np.random.default_rng(0)
    small = rng.normal(size=50)
    big = rng.normal(size=(6, 1500)).astype(np.float32)
    big[2, 17] = np.nan
    for a in (small, big):
        e = enc(a)
        assert_same(a.copy(), e, "a")
    assert "summary" in enc(big)
    assert_same(big.astype(np.float64), enc(big), "widened")  # float width not compared
    with pytest.raises(AssertionError, match="dtype float64"):
        assert_same(big.astype(np.float64), enc(big), "widened", strict_dtype=True)
    moved = big.copy()
    moved[2, 17], moved[2, 18] = moved[2, 18], np.nan
    with pytest.raises(AssertionError, match="NaN at different positions"):
        assert_same(moved, enc(big), "big")
    bumped = big.copy()
    bumped[5, 1499] += 0.5
    with pytest.raises(AssertionError, match="sum"):
        assert_same(bumped, enc(big), "big")
    with pytest.raises(AssertionError, match="shape"):
        assert_same(big.T, enc(big), "big")
    with pytest.raises(AssertionError, match="dtype int64"):
        assert_same(np.arange(50), enc(small), "small")
    mask = np.zeros((64, 64), bool)
    mask[3:7, 10:14] = True
    assert_same(mask.copy(), enc(mask), "mask")
    with pytest.raises(AssertionError, match="True at different positions"):
        assert_same(np.roll(mask, 1), enc(mask), "mask")


def test_array_column_and_object_index():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "cell_roi_id": [1, 2, 3],
            "dff": [rng.normal(size=1500).astype(np.float32) for _ in range(3)],
        },
        index=pd.Index([10, 11, 12], name="cell_specimen_id"),
    )
    e = enc(df)
    assert_same(df.copy(), e, "dff_traces")
    changed = df.copy()
    changed.at[11, "dff"] = changed.at[11, "dff"] + np.float32(1)
    with pytest.raises(AssertionError, match=r"dff_traces\['dff'\] row 1 \(label 11\)"):
        assert_same(changed, e, "dff_traces")
    listed = df.assign(dff=[list(x) for x in df["dff"]])
    with pytest.raises(AssertionError, match="dff.*kind object"):
        assert_same(listed, e, "dff_traces")
    with_none = df.set_axis(pd.Index([10, None, 12], dtype=object, name="cell_specimen_id"))
    e_none = enc(with_none)
    assert e_none["index"]["kind"] == "integer" and e_none["index"]["nullable"]
    assert_same(
        with_none.set_axis(pd.Index([10, pd.NA, 12], dtype="Int64", name="cell_specimen_id")),
        e_none,
        "t",
    )
    with pytest.raises(AssertionError, match="index: kind integer"):
        assert_same(df, e_none, "t")


def test_dict_scalars_image_coordinates(experiment):
    meta = attr(experiment, "metadata")
    m = decode(meta)
    assert isinstance(m["behavior_session_uuid"], uuid.UUID)
    assert m["date_of_acquisition"].tzinfo is not None
    assert_same(dict(m), meta, "metadata")
    reordered = {k: m[k] for k in sorted(m)}
    with pytest.raises(AssertionError, match="keys"):
        assert_same(reordered, meta, "metadata")
    for key, bad in [
        ("mouse_id", int(m["mouse_id"])),
        ("ophys_frame_rate", 31),
        ("date_of_acquisition", m["date_of_acquisition"].replace(tzinfo=None)),
        ("behavior_session_uuid", str(m["behavior_session_uuid"])),
        ("driver_line", tuple(m["driver_line"])),
        ("imaging_plane_group", 0),
    ]:
        with pytest.raises(AssertionError, match=rf"metadata\['{key}'\]"):
            assert_same({**m, key: bad}, meta, "metadata")
    other_tz = m["date_of_acquisition"].astimezone(dt.timezone(dt.timedelta(hours=-7)))
    with pytest.raises(AssertionError, match="date_of_acquisition"):
        assert_same({**m, "date_of_acquisition": other_tz}, meta, "metadata")

    Image = namedtuple("Image", "data spacing unit")
    data = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    e = enc(Image(data, (0.00078125, 0.00078125), "mm"))
    assert_same(Image(data.copy(), (0.00078125, 0.00078125), "mm"), e, "max_projection")
    with pytest.raises(AssertionError, match="spacing"):
        assert_same(Image(data, (0.0007812, 0.00078125), "mm"), e, "max_projection")
    with pytest.raises(AssertionError, match="max_projection.data"):
        assert_same(Image(data.T.copy(), (0.00078125, 0.00078125), "mm"), e, "max_projection")

    class Coordinates:
        def __init__(self, x, y, z):
            self.x, self.y, self.z = x, y, z

        def __iter__(self):
            return iter((self.x, self.y, self.z))

    rig = attr(experiment, "eye_tracking_rig_geometry")
    values = {
        k: (Coordinates(*v["xyz"]) if v["type"] == "Coordinates" else v["value"])
        for k, v in rig["items"]
    }
    assert_same(values, rig, "rig")
    with pytest.raises(AssertionError, match="camera_position_mm"):
        assert_same({**values, "camera_position_mm": np.array([130.0, 0.0, 0.0])}, rig, "rig")


def test_raises_and_check_object(experiment):
    entry = experiment["attributes"]["get_reward_rate"]
    assert entry["raises"]["exception"] == "TypeError"

    class Raising:
        def get_reward_rate(self):
            raise TypeError("no")

    class Fixed:
        def get_reward_rate(self):
            return np.zeros(9)

    check_attribute(Raising(), "get_reward_rate", entry)
    with pytest.raises(AssertionError, match="AllenSDK raised TypeError"):
        check_attribute(Fixed(), "get_reward_rate", entry)
    check_attribute(Fixed(), "get_reward_rate", entry, allow_fixed=True)

    doc = copy.deepcopy(load_expected("allensdk_session_800000012.json"))

    class Session:
        def list_data_attributes_and_methods(self):
            return doc["list_data_attributes_and_methods"]

        def __getattr__(self, name):
            value = decode(doc["attributes"][name]["value"])
            return (lambda: value) if name.startswith("get_") else value

    names = {
        n for n, e in doc["attributes"].items() if not _decodable(e["value"])
    }  # arrays stored as summaries
    check_object(Session(), doc, "session", skip=tuple(names))
    doc["attributes"]["trials"]["value"]["columns"][0]["name"] = "begin_time"
    with pytest.raises(AssertionError, match=r"(?s)1 difference.*session\.trials"):
        check_object(
            Session(),
            load_expected("allensdk_session_800000012.json"),
            "session",
            skip=tuple(names),
        )


def _decodable(e) -> bool:
    try:
        decode(e)
    except ValueError:
        return False
    return True


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="no ../shared/nwb-fixtures")
def test_real_values_from_the_fixture(experiment):
    """Values read straight from the file with h5py match AllenSDK's summaries."""
    import h5py

    with h5py.File(FIXTURES / "behavior_ophys_experiment_900000013.nwb", "r") as f:
        ts = f["processing/stimulus/timestamps/timestamps"][:]
        speed = f["processing/running/speed/data"][:]
        speed_ts = f["processing/running/speed/timestamps"][:]
    assert_same(ts, attr(experiment, "stimulus_timestamps"), "stimulus_timestamps")
    running = pd.DataFrame({"timestamps": speed_ts, "speed": speed})
    if np.mean(speed) < -1:  # AllenSDK's _fix_polarity
        running["speed"] = -running["speed"]
    assert_same(running, attr(experiment, "running_speed"), "running_speed")
    with pytest.raises(AssertionError, match=r"running_speed\['speed'\]"):
        assert_same(
            running.assign(speed=running["speed"] + 1e-9),
            attr(experiment, "running_speed"),
            "running_speed",
        )

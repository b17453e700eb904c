"""intake_vbo.nwb.session: BehaviorSession's values (AllenSDK parity), laziness, lifecycle,
files missing optional parts, and the vectorised computations against plain references."""

from __future__ import annotations

import gc
import io
import shutil
import statistics
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from reads import count_reads
from shared import FIXTURES

from intake_vbo.base.errors import VboError
from intake_vbo.nwb import open_session
from intake_vbo.nwb.conventions import LEADING_COLUMNS
from intake_vbo.nwb.eyes import dilate, zscore_outliers
from intake_vbo.nwb.metrics import norm_ppf
from intake_vbo.nwb.presentations import flashes_since_change
from intake_vbo.nwb.session import BehaviorSession

SESSION = FIXTURES / "behavior_session_800000012.nwb"
EXPERIMENT = FIXTURES / "behavior_ophys_experiment_900000013.nwb"
DATA = Path(__file__).resolve().parent / "data"

pytestmark = pytest.mark.skipif(not SESSION.is_file(), reason=f"no NWB fixtures at {FIXTURES}")

NAMES = [
    "behavior_session_id",
    "eye_tracking",
    "eye_tracking_rig_geometry",
    "get_performance_metrics",
    "get_reward_rate",
    "get_rolling_performance_df",
    "licks",
    "metadata",
    "raw_running_speed",
    "rewards",
    "running_speed",
    "stimulus_presentations",
    "stimulus_templates",
    "stimulus_timestamps",
    "task_parameters",
    "trials",
]
PROPERTIES = [n for n in NAMES if not n.startswith("get_")]


@pytest.fixture
def session():
    with open_session(SESSION) as ses:
        yield ses


def copy_without(tmp_path: Path, *paths: str, source: Path = SESSION) -> Path:
    """A copy of ``source`` with the HDF5 groups or datasets at ``paths`` deleted."""
    target = tmp_path / source.name
    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as f:
        for path in paths:
            del f[path]
    return target


# -- names, values, AllenSDK parity -------------------------------------------------------


def test_list_data_attributes_and_methods(session):
    assert session.list_data_attributes_and_methods() == NAMES


def _allensdk_expected():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import allensdk_expected
    finally:
        sys.path.pop(0)
    return allensdk_expected


@pytest.mark.parametrize(
    ("document", "nwb", "fixed"),
    [
        ("allensdk_session_800000012.json", SESSION, ()),
        # this file stores lick_times as one float per trial, on which AllenSDK's metrics
        # raise TypeError; ours count each float as that trial's lick (metrics.py)
        (
            "allensdk_session_of_experiment_900000013.json",
            EXPERIMENT,
            ("get_performance_metrics", "get_reward_rate", "get_rolling_performance_df"),
        ),
    ],
)
def test_every_attribute_equals_allensdk(document, nwb, fixed):
    if not (DATA / document).is_file():
        pytest.skip(f"no AllenSDK expectations {document}")
    expected = _allensdk_expected()
    doc = expected.load_expected(document)
    with open_session(nwb) as ses:
        expected.check_object(ses, doc, "BehaviorSession", allow_fixed=fixed)


def test_presentations_column_order_is_fixed_then_sorted(session):
    columns = list(session.stimulus_presentations.columns)
    assert columns[: len(LEADING_COLUMNS)] == list(LEADING_COLUMNS)
    tail = columns[columns.index("trials_id") + 1 :]
    assert tail == sorted(tail) == ["active", "is_sham_change", "stimulus_name"]
    assert session.stimulus_presentations.index.name == "stimulus_presentations_id"


def test_metadata_kinds(session):
    meta = session.metadata
    assert meta["date_of_acquisition"] == pd.Timestamp("2019-10-09T08:58:49", tz="UTC")
    assert str(meta["date_of_acquisition"].tz) == "UTC"
    assert isinstance(meta["behavior_session_uuid"], uuid.UUID)
    assert meta["driver_line"] == sorted(meta["driver_line"])
    assert isinstance(meta["mouse_id"], str) and meta["age_in_days"] == 109


def test_rig_geometry_coordinates(session):
    geometry = session.eye_tracking_rig_geometry
    camera = geometry["camera_position_mm"]
    assert (camera.x, camera.y, camera.z) == tuple(camera) == (130.0, 0.0, 0.0)
    assert camera == [130.0, 0.0, 0.0]
    assert geometry["equipment"] == "CAM2P.4"


def test_eye_tracking_options_change_blinks():
    with (
        open_session(SESSION) as default,
        open_session(
            SESSION, eye_tracking_z_threshold=0.5, eye_tracking_dilation_frames=0
        ) as strict,
    ):
        blinks_default = default.eye_tracking["likely_blink"]
        blinks_strict = strict.eye_tracking["likely_blink"]
    assert blinks_strict.sum() != blinks_default.sum()
    masked = strict.eye_tracking["pupil_area"].isna()
    assert (masked == blinks_strict).all()


# -- laziness -----------------------------------------------------------------------------


def test_opening_reads_no_dataset(monkeypatch):
    reads = count_reads(monkeypatch)
    with open_session(SESSION) as ses:
        assert reads == []
        assert ses._cache == {}


@pytest.mark.parametrize(
    ("attribute", "prefixes"),
    [
        ("stimulus_timestamps", ("processing/stimulus/",)),
        ("running_speed", ("processing/running/speed/",)),
        ("raw_running_speed", ("processing/running/speed_unfiltered/",)),
        ("licks", ("processing/licking/",)),
        ("rewards", ("processing/rewards/",)),
        ("trials", ("intervals/trials/",)),
        ("stimulus_presentations", ("intervals/Natural_", "intervals/natural_", "intervals/spon")),
        ("stimulus_templates", ("stimulus/templates/",)),
        ("eye_tracking", ("acquisition/EyeTracking/",)),
        ("eye_tracking_rig_geometry", ("processing/eye_tracking_rig_metadata/",)),
        ("metadata", ("general/", "session_start_time")),
        ("task_parameters", ("general/task_parameters",)),
        ("behavior_session_id", ("general/metadata",)),
    ],
)
def test_each_attribute_reads_only_its_own_datasets(monkeypatch, attribute, prefixes):
    reads = count_reads(monkeypatch)
    with open_session(SESSION) as ses:
        value = getattr(ses, attribute)
        assert list(ses._cache) == [attribute]
        assert all(path.startswith(prefixes) for path in reads), reads
        before = len(reads)
        assert getattr(ses, attribute) is value  # kept: no second read
        assert len(reads) == before


def test_metrics_return_fresh_objects(session):
    first = session.get_rolling_performance_df()
    first.loc[:, "hit_rate"] = -1.0
    second = session.get_rolling_performance_df()
    assert second is not first and not (second["hit_rate"] == -1.0).any()
    metrics = session.get_performance_metrics()
    metrics["trial_count"] = -1
    assert session.get_performance_metrics()["trial_count"] == len(session.trials)
    rate = session.get_reward_rate()
    assert rate is not session.get_reward_rate()


# -- lifecycle ----------------------------------------------------------------------------


def test_close_keeps_what_was_read():
    ses = open_session(SESSION)
    trials, _ = ses.trials, ses.task_parameters
    ses.close()
    assert ses.closed
    assert ses.trials is trials
    assert len(ses.get_rolling_performance_df()) == 9  # computed from what was kept
    with pytest.raises(VboError) as exc:
        _ = ses.licks
    message = str(exc.value)
    assert "\n" not in message and str(SESSION) in message and "licks" in message
    ses.close()  # twice is fine


def test_with_block_closes():
    with open_session(SESSION) as ses:
        assert not ses.closed
    assert ses.closed


def test_garbage_collection_closes_the_handle():
    ses = open_session(SESSION)
    reader = ses._reader
    handle = reader.h5
    del ses
    gc.collect()
    assert reader.closed and not handle.id.valid


def test_file_like_source():
    with open_session(io.BytesIO(SESSION.read_bytes())) as ses:
        assert ses.behavior_session_id == 800000012
        assert len(ses.trials) == 9


def test_nwbfile(session):
    assert session.nwbfile.identifier == "800000012"


def test_class_open_and_repr():
    ses = BehaviorSession.open(SESSION)
    assert "open" in repr(ses)
    ses.close()
    assert "closed" in repr(ses)


# -- files missing optional parts ---------------------------------------------------------


def test_no_eye_tracking(tmp_path):
    path = copy_without(tmp_path, "acquisition/EyeTracking", "processing/eye_tracking_rig_metadata")
    with open_session(path) as ses:
        eyes = ses.eye_tracking
        assert eyes.empty and eyes.index.name == "frame"
        assert list(eyes.columns)[:5] == [
            "timestamps",
            "cr_area",
            "eye_area",
            "pupil_area",
            "likely_blink",
        ]
        assert len(eyes.columns) == 23 and (eyes.dtypes == np.float64).all()
        assert ses.eye_tracking_rig_geometry == {}


def test_no_licks_no_rewards(tmp_path):
    path = copy_without(tmp_path, "processing/licking", "processing/rewards")
    with open_session(path) as ses:
        assert list(ses.licks.columns) == ["timestamps", "frame"] and ses.licks.empty
        assert (ses.licks.dtypes == np.float64).all()  # as AllenSDK's pandas 1.5 made them
        assert list(ses.rewards.columns) == ["volume", "timestamps", "auto_rewarded"]
        assert ses.rewards.empty and (ses.rewards.dtypes == np.float64).all()
        metrics = ses.get_performance_metrics()
        assert metrics["total_reward_count"] == 0 and metrics["total_reward_volume"] == 0


def _without_licks(tmp_path: Path, placeholder: bool) -> Path:
    """A copy with no licks at all; its trials' ``lick_times`` as AllenSDK's writer stores
    a ragged column without values (one empty string, an all-zero index), or plain."""
    path = copy_without(tmp_path, "processing/licking", "intervals/trials/lick_times")
    with h5py.File(path, "r+") as f:
        trials = f["intervals/trials"]
        index = trials["lick_times_index"]
        index[...] = np.zeros(index.shape, index.dtype)
        if placeholder:
            trials.create_dataset("lick_times", data=[""], dtype=h5py.string_dtype())
        else:
            trials.create_dataset("lick_times", shape=(0,), dtype=np.float64)
    return path


def test_a_ragged_column_without_values_is_empty_arrays(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    with (
        open_session(_without_licks(tmp_path / "a", placeholder=True)) as stored,
        open_session(_without_licks(tmp_path / "b", placeholder=False)) as plain,
    ):
        licks = stored.trials["lick_times"]
        assert len(licks) > 0 and all(len(t) == 0 and t.dtype == np.float64 for t in licks)
        pd.testing.assert_frame_equal(stored.trials, plain.trials)
        assert stored.get_reward_rate() == pytest.approx(plain.get_reward_rate(), nan_ok=True)
        pd.testing.assert_frame_equal(
            stored.get_rolling_performance_df(), plain.get_rolling_performance_df()
        )
        assert stored.get_performance_metrics() == pytest.approx(
            plain.get_performance_metrics(), nan_ok=True
        )


def test_no_image_template(tmp_path):
    path = copy_without(tmp_path, "stimulus/templates")
    with open_session(path) as ses:
        assert ses.stimulus_templates is None


def test_passive_session_has_zero_dprime(tmp_path):
    path = tmp_path / SESSION.name
    shutil.copyfile(SESSION, path)
    with h5py.File(path, "r+") as f:
        trials = f["intervals/trials"]
        trials["reward_volume"][...] = 0.0
        del trials["lick_times"], trials["lick_times_index"]
        trials["lick_times"] = np.empty(0)
        trials["lick_times_index"] = np.zeros(9, dtype=np.uint8)
    with open_session(path) as ses:
        assert all(len(v) == 0 for v in ses.trials["lick_times"])
        dprime = ses.get_rolling_performance_df()["rolling_dprime"].dropna()
        assert len(dprime) and (dprime == 0).all()
        assert np.isnan(ses.get_reward_rate()).all()


def test_presentations_computes_missing_trial_columns(tmp_path):
    """Without active / trials_id / is_sham_change, they are computed as AllenSDK's writer did."""
    with open_session(SESSION) as ses:
        stored = ses.stimulus_presentations
    with h5py.File(SESSION, "r") as f:
        tables = [k for k in f["intervals"] if k.endswith("_presentations")]
    drop = [f"intervals/{t}/{c}" for t in tables for c in ("active", "trials_id", "is_sham_change")]
    path = copy_without(tmp_path, *drop)
    with h5py.File(path, "r+") as f:
        for table in (f[f"intervals/{t}"] for t in tables):
            table.attrs["colnames"] = [n for n in table.attrs["colnames"] if n in table]
    with open_session(path) as ses:
        computed = ses.stimulus_presentations
    for column in ("active", "trials_id", "is_sham_change"):
        assert computed[column].tolist() == stored[column].tolist(), column
    assert computed["trials_id"].dtype == np.int64 and computed["active"].dtype == bool


def test_missing_required_dataset_is_one_line_error(tmp_path):
    path = copy_without(tmp_path, "processing/stimulus")
    with open_session(path) as ses, pytest.raises(VboError) as exc:
        _ = ses.stimulus_timestamps
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


# -- the vectorised computations against plain references ---------------------------------


def _flashes_reference(is_change, carried):
    """AllenSDK's get_flashes_since_change loop, on plain arrays."""
    out = np.zeros(len(is_change), dtype=np.int64)
    for i in range(len(is_change)):
        if carried[i]:
            out[i] = out[i - 1]
        elif is_change[i] or i == 0:
            out[i] = 0
        else:
            out[i] = out[i - 1] + 1
    return out


def test_flashes_since_change_matches_the_loop():
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        is_change = rng.random(n) < 0.15
        carried = rng.random(n) < 0.2
        is_change &= ~carried
        expected = _flashes_reference(is_change, carried)
        assert flashes_since_change(is_change, carried).tolist() == expected.tolist()


def test_norm_ppf_matches_statistics():
    p = np.concatenate([np.linspace(1e-9, 1 - 1e-9, 2001), [0.01, 0.99, 1e-300]])
    expected = np.array([statistics.NormalDist().inv_cdf(x) for x in p])
    assert np.allclose(norm_ppf(p), expected, rtol=1e-13, atol=1e-13)
    assert norm_ppf([0.0, 1.0]).tolist() == [-np.inf, np.inf] and np.isnan(norm_ppf([np.nan]))[0]


def test_zscore_and_dilation_match_references():
    values = np.array([[1.0, 2.0], [1.1, np.nan], [1.0, 2.1], [9.0, 2.0]] + [[1.0, 2.0]] * 20)
    z = np.abs(values - np.nanmean(values, 0)) / np.nanstd(values, 0)
    expected = np.nan_to_num(z, nan=0) > 3.0
    assert zscore_outliers(values, 3.0).tolist() == expected.any(axis=1).tolist()
    mask = np.zeros(12, dtype=bool)
    mask[[0, 6]] = True
    widened = dilate(mask, 2)
    assert np.flatnonzero(widened).tolist() == [0, 1, 2, 4, 5, 6, 7, 8]
    assert dilate(mask, 0).tolist() == mask.tolist()

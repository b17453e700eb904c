"""Per-file tables over many files on Dask: threads, processes and a distributed cluster.

The sources ``ophys_experiment_tables`` / ``behavior_session_tables`` of a catalog of
the sample release (conftest), each test with a cold cache of its own. The reference is
always the analysis objects read directly, file by file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import signal
import threading
import time
from urllib.parse import urlsplit

import dask
import intake
import numpy as np
import pandas as pd
import pytest
from faultproxy import FaultProxy
from pandas.testing import assert_frame_equal

from intake_vbo.base.errors import VboError
from intake_vbo.catalog.schema import FILE_TABLES
from intake_vbo.drivers.tablemeta import TABLES
from intake_vbo.nwb import open_experiment, open_session
from intake_vbo.transfer.cache import Cache

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.filterwarnings("ignore:Shell command not executed")

N_EXPERIMENTS = 5
ARRAY_COLUMNS = {"dff_traces": "dff", "events": "events", "trials": "lick_times"}


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on loopback, for the whole module."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def cat(catalog_dir):
    return intake.open_catalog(str(catalog_dir / "catalog.yaml"))


@pytest.fixture(scope="module")
def experiments(cat) -> list[int]:
    return [int(i) for i in cat.latest.ophys_experiments.read().index[:N_EXPERIMENTS]]


@pytest.fixture(scope="module")
def sessions(cat) -> list[int]:
    """Two behavior sessions with a file of their own, and one served by its experiment."""
    files = cat.latest.files.read()
    own = files.loc[files["kind"] == "behavior_session", "behavior_session_id"]
    table = cat.latest.behavior_sessions.read()
    imaged = [i for i, e in table["ophys_experiment_id"].items() if isinstance(e, list) and e]
    return [int(own.iloc[0]), int(own.iloc[1]), int(imaged[0])]


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("VBO_CACHE_DIR", str(root))
    return root


def expected(cat, kind: str, table: str, ids) -> pd.DataFrame:
    """The objects' attribute, file by file, with the id column, concatenated."""
    frames = []
    for ident in ids:
        source = getattr(cat.latest, kind)(**{f"{kind}_id": ident})
        opener = open_experiment if kind == "ophys_experiment" else open_session
        with opener(source.fetch()) as view:
            frame = getattr(view, table)
        if frame is None:
            continue
        if table == "cell_specimen_table":
            frame = frame.drop(columns="roi_mask")
        if TABLES[table].index[0] == "cell_specimen_id":  # one index dtype for all files
            frame.index = frame.index.astype("Int64")
        frames.append(frame.assign(**{f"{kind}_id": np.int64(ident)}))
    return pd.concat(frames)


def assert_matches_meta(result: pd.DataFrame, ddf) -> None:
    assert list(result.columns) == list(ddf.columns)
    assert result.dtypes.to_dict() == ddf.dtypes.to_dict()
    assert result.index.name == ddf.index.name
    assert result.index.dtype == ddf._meta.index.dtype


def assert_same_rows(result: pd.DataFrame, reference: pd.DataFrame) -> None:
    """``result`` holds ``reference``; columns it adds (declared, absent here) are null."""
    assert_frame_equal(result[list(reference.columns)], reference)
    for column in (c for c in result.columns if c not in reference.columns):
        assert (result[column].isna() | result[column].eq(-99)).all(), column


def test_cluster_result_equals_the_objects_and_keeps_arrays(cat, experiments, cache_root, client):
    assert dask.config.get("dataframe.convert-string") is not False  # the default config
    source = cat.latest.ophys_experiment_tables(
        table="dff_traces", ophys_experiment_ids=experiments
    )
    ddf = source.to_dask()
    assert ddf.npartitions == len(experiments)
    assert len(pickle.dumps(source)) < 2000 and len(pickle.dumps(ddf)) < 20000
    result = ddf.compute(scheduler=client)
    assert_matches_meta(result, ddf)
    assert result["dff"].dtype == object
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in result["dff"])
    reference = expected(cat, "ophys_experiment", "dff_traces", experiments)
    assert_frame_equal(result, reference)
    assert_frame_equal(source.read(), result)
    # a reduction per file, in dask: the mean dF/F of each cell
    means = ddf.map_partitions(
        lambda p: p.assign(mean=[float(np.mean(a)) for a in p["dff"]])[["mean"]],
        meta={"mean": "f8"},
    ).compute(scheduler=client)
    assert np.allclose(means["mean"], [np.mean(a) for a in reference["dff"]])


@pytest.mark.parametrize("kind", ["ophys_experiment", "behavior_session"])
def test_every_table_matches_its_meta_and_the_objects(cat, experiments, sessions, kind, cache_root):
    ids = experiments[:2] if kind == "ophys_experiment" else sessions
    for table in FILE_TABLES[kind]:
        source = getattr(cat.latest, f"{kind}_tables")(table=table, **{f"{kind}_ids": ids})
        ddf = source.to_dask()
        result = ddf.compute(scheduler="threads")
        assert_matches_meta(result, ddf)
        assert set(result[f"{kind}_id"]) <= set(ids)
        assert_same_rows(result, expected(cat, kind, table, ids))
        if table in ARRAY_COLUMNS:
            assert isinstance(result[ARRAY_COLUMNS[table]].iloc[0], np.ndarray), table


def test_cold_cache_is_filled_once_by_both_workers(
    cat, experiments, cache_root, client, s3_endpoint, bucket_url, monkeypatch
):
    with FaultProxy(s3_endpoint) as proxy:
        monkeypatch.setenv("VBO_BUCKET_URL", proxy.url + urlsplit(bucket_url).path)
        tables = [
            cat.latest.ophys_experiment_tables(table=t, ophys_experiment_ids=experiments)
            for t in ("dff_traces", "events", "licks")
        ]
        assert tables[0].discover()["metadata"]["cached"] == 0
        dff, events, licks = dask.compute(*(t.to_dask() for t in tables), scheduler=client)
        counted = dict(proxy.requests), dict(proxy.sent)
    paths = {urlsplit(p.url).path: p for p in tables[0].file_tasks()}
    assert set(counted[0]) == set(paths)
    info = tables[0].discover()["metadata"]
    assert (info["files"], info["cached"]) == (len(experiments), len(experiments))
    cache = Cache(cache_root)
    sizes = {path: cache.path(part.file_hash).stat().st_size for path, part in paths.items()}
    assert info["cached_bytes"] == sum(sizes.values())
    for path in paths:  # each file sent once, whole
        assert counted[0][path] == 1
        assert counted[1][path] == sizes[path]
    assert set(dff["ophys_experiment_id"]) == set(experiments)
    assert_frame_equal(events, expected(cat, "ophys_experiment", "events", experiments))
    assert len(licks) > 0


def test_bad_table_or_id_fails_before_any_work(cat, experiments, cache_root):
    with pytest.raises(VboError, match="ophys experiment tables: unknown table 'trial'") as info:
        cat.latest.ophys_experiment_tables(table="trial", ophys_experiment_ids=experiments)
    assert "\n" not in str(info.value) and "dff_traces" in str(info.value)
    with pytest.raises(VboError, match="unknown table 'dff_traces'"):
        cat.latest.behavior_session_tables(table="dff_traces")
    source = cat.latest.ophys_experiment_tables(ophys_experiment_ids=[*experiments, 12345])
    for step in (source.to_dask, source.read, source.discover):
        with pytest.raises(VboError, match="ophys experiment 12345 has no NWB file in release"):
            step()
    with pytest.raises(VboError, match="'x1' is not an integer id"):
        cat.latest.ophys_experiment_tables(ophys_experiment_ids=[experiments[0], "x1"])
    assert not cache_root.exists()  # nothing was fetched


def test_default_ids_are_every_file_of_the_kind(cat, cache_root):
    files = cat.latest.files.read()
    for kind in ("ophys_experiment", "behavior_session"):
        source = getattr(cat.latest, f"{kind}_tables")()
        info = source.discover()
        assert info["npartitions"] == info["metadata"]["files"]
        assert info["npartitions"] == int((files["kind"] == kind).sum())
        assert info["metadata"]["cached"] == 0 and not cache_root.exists()


def test_threads_processes_and_streaming_agree(cat, experiments, cache_root):
    def events(stream: bool):
        return cat.latest.ophys_experiment_tables(
            table="events", ophys_experiment_ids=experiments, stream=stream
        ).to_dask()

    streamed = events(True).compute(scheduler="threads")  # cold cache: by Range requests
    assert (cache_root / "blocks").is_dir()
    threads = events(False).compute(scheduler="threads")
    processes = events(False).compute(scheduler="processes", num_workers=2)
    assert_frame_equal(threads, processes)
    assert_frame_equal(threads, streamed)
    assert isinstance(processes["filtered_events"].iloc[0], np.ndarray)


def test_a_worker_killed_mid_download_is_retried_and_the_cache_stays_sound(
    cat, experiments, cache_root, client, s3_endpoint, bucket_url, monkeypatch
):
    with FaultProxy(s3_endpoint) as proxy:
        monkeypatch.setenv("VBO_BUCKET_URL", proxy.url + urlsplit(bucket_url).path)
        source = cat.latest.ophys_experiment_tables(
            table="dff_traces", ophys_experiment_ids=experiments[-1:]
        )
        proxy.hold = threading.Event()  # the download waits at the server
        future = client.compute(source.to_dask())
        try:
            worker = _worker_downloading(client, proxy)
            pid = client.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)
        finally:
            proxy.hold.set()
        result = future.result(timeout=120)
    assert_frame_equal(result, expected(cat, "ophys_experiment", "dff_traces", experiments[-1:]))
    (task,) = source.file_tasks()
    tries = [r for r in proxy.log if r.path == urlsplit(task.url).path]
    assert len(tries) >= 2  # the killed task's request, then the retried task's
    cached = list((cache_root / "blake2b").rglob("*.nwb"))
    assert [p.name for p in cached] == [f"{task.file_hash}.nwb"]
    assert hashlib.blake2b(cached[0].read_bytes()).hexdigest() == task.file_hash


def _worker_downloading(client, proxy) -> str:
    """The worker whose task has a request waiting at the proxy."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]
        if proxy.log and busy:
            return busy[0]
        time.sleep(0.05)
    raise AssertionError("no task reached the server within 60 s")

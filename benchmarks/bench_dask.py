"""Scale-out on Dask: one per-experiment reduction over 40 medium experiments, cold cache.

The reduction is the mean dF/F of each cell of each experiment. It runs as a plain Python
loop over the catalog's ``ophys_experiment(...).read()`` objects, then as
``ophys_experiment_tables(table="dff_traces").to_dask()`` on a ``distributed.LocalCluster``
of 1, 2 and 4 single-threaded worker processes. Every run starts with an empty cache
(its own ``VBO_CACHE_DIR``) and the server's files evicted from the page cache, so each
run downloads, verifies, opens and reads all 40 files.

The files: a one-version sample release (1.1.0) whose first 40 experiment NWB files are
replaced by medium ones written with the sample's own NWB writer at a larger size
(40 valid ROIs of 45, 15,000 frames, a 256x256 field of view; the ophys datasets stored
uncompressed: about 23 MB each), generated once into ``benchmarks/.data/dask/``
(git-ignored) and readable by ``open_experiment`` like any released file. They are
served by SeaweedFS on loopback through ``shaper.py``: once shaped like a distant S3
(25 MB/s per connection, 20 ms per request), once at loopback speed.

Worker memory: each partition reports its worker's RSS after its file was read; the row
gives the largest spread (max - min) of one worker's RSS across its partitions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import seaweed
from common import BENCH, Row
from fetch_release import data_files
from shaper import Shaper

N_EXPERIMENTS = 40
N_ROIS, FRAMES, FOV = 40, 15_000, 256
VERSION = "1.1.0"
SCALE = 0.05  # a one-version sample with ~95 experiments, 40 of them made medium
DATA = BENCH / ".data" / "dask"
RATE, RTT = 25e6, 0.020  # per connection; per request (as the range benchmarks)
WORKERS = (1, 2, 4)
MB, MIB = 1e6, 1 << 20


def run(repeat: int) -> list[Row]:
    """Publish the medium release on SeaweedFS and time the loop and the clusters.

    Parameters
    ----------
    repeat : int
        Cold runs per figure (the median is reported).
    """
    import intake

    from intake_vbo.catalog.build import build
    from intake_vbo.sample.s3 import publish

    release, ids, size = medium_release()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vbo-bench-dask-") as tmp:
        work = Path(tmp)
        with seaweed.running(work / "weed") as endpoint:
            bucket = publish(release, endpoint)
            build(work / "catalog", bucket)
            cat = intake.open_catalog(str(work / "catalog" / "catalog.yaml"))
            bench = Bench(work, cat, ids, repeat)
            for link, rate, rtt in (
                (f"{RATE / MB:.0f} MB/s per connection, {RTT * 1e3:.0f} ms", RATE, RTT),
                ("loopback", None, 0.0),
            ):
                # a shaper of its own: no kept-alive connection carries the last link's shape
                with Shaper(endpoint, rate, rtt) as shaper:
                    os.environ["VBO_BUCKET_URL"] = shaper.url + urlsplit(bucket).path
                    rows += bench.figures(link, size)
            rows.append(bench.memory_row())
    return rows


class Bench:
    """Cold runs of the loop and of the clusters over one catalog."""

    def __init__(self, work: Path, cat, ids: list[int], repeat: int):
        self.work, self.cat, self.ids, self.repeat = work, cat, ids, repeat
        self.spreads: list[float] = []
        self.peaks: list[float] = []
        self.expected: dict | None = None

    def cold(self, fn) -> float:
        """Seconds of ``fn()`` on an empty cache with the server's files out of memory."""
        cache = self.work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        os.environ["VBO_CACHE_DIR"] = str(cache)
        seaweed.evict(self.work / "weed")
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        self.check(result)
        return seconds

    def check(self, means: dict) -> None:
        """Every run must give the first run's means."""
        if self.expected is None:
            self.expected = means
        elif means.keys() != self.expected.keys() or not all(
            np.allclose(means[k], self.expected[k]) for k in means
        ):
            raise RuntimeError("bench_dask: a run gave other means than the first")

    def loop(self) -> dict:
        means = {}
        for ident in self.ids:
            source = self.cat.latest.ophys_experiment(ophys_experiment_id=ident)
            with source.read() as experiment:
                means[ident] = np.array([np.mean(a) for a in experiment.dff_traces["dff"]])
        return means

    def dask(self, client) -> dict:
        source = self.cat.latest.ophys_experiment_tables(
            table="dff_traces", ophys_experiment_ids=self.ids
        )
        meta = {"ophys_experiment_id": "i8", "mean_dff": "f8", "rss": "i8", "pid": "i8"}
        result = source.to_dask().map_partitions(mean_dff, meta=meta).compute(scheduler=client)
        for _, rss in result.groupby("pid")["rss"]:
            self.spreads.append((rss.max() - rss.min()) / MIB)
            self.peaks.append(rss.max() / MIB)
        return {k: g["mean_dff"].to_numpy() for k, g in result.groupby("ophys_experiment_id")}

    def figures(self, link: str, size: int) -> list[Row]:
        """The loop, then 1, 2 and 4 workers, over ``link``."""
        import cloudpickle
        import distributed

        cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack benchmarks/
        _progress(f"dask: plain loop, {link}")
        loop = statistics.median(self.cold(self.loop) for _ in range(self.repeat))
        total = f"{N_EXPERIMENTS} x {size / MB:.0f} MB"
        rows = [
            Row(f"dask: mean dF/F per cell, {total}, plain loop over open_experiment ({link})",
                loop, note=f"{N_EXPERIMENTS * size / MB / loop:.0f} MB/s end to end"),
        ]  # fmt: skip
        for n in WORKERS:
            _progress(f"dask: LocalCluster, {n} worker(s), {link}")
            with (
                distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, silence_logs=logging.ERROR,
                ) as cluster,
                distributed.Client(cluster, set_as_default=False) as client,
            ):  # fmt: skip
                client.run(_warm)  # imports on the workers, untimed
                seconds = statistics.median(
                    self.cold(lambda c=client: self.dask(c)) for _ in range(self.repeat)
                )
            rows.append(
                Row(f"dask: the same, to_dask() on LocalCluster({n} x 1 thread) ({link})",
                    seconds, loop, "the plain loop", faster=True,
                    note=f"{N_EXPERIMENTS * size / MB / seconds:.0f} MB/s end to end"),
            )  # fmt: skip
        return rows

    def memory_row(self) -> Row:
        return Row(
            "dask: worker RSS growth across its partitions (largest, any run)",
            max(self.spreads),
            target=64,
            faster=None,
            unit="MiB",
            note=f"RSS read after each partition; peak worker RSS {max(self.peaks):.0f} MiB",
        )


def mean_dff(part):
    """One partition's reduction: the mean dF/F of each cell, and this worker's RSS now."""
    import pandas as pd
    import psutil

    return pd.DataFrame(
        {
            "ophys_experiment_id": part["ophys_experiment_id"].to_numpy(),
            "mean_dff": [float(np.mean(a)) for a in part["dff"]],
            "rss": psutil.Process().memory_info().rss,
            "pid": os.getpid(),
        },
        index=part.index,
    )


def _warm() -> None:
    import intake_vbo.drivers.tasks  # noqa: F401
    import intake_vbo.nwb.experiment  # noqa: F401


# -- the medium release, generated once -------------------------------------------------


def medium_release() -> tuple[Path, list[int], int]:
    """The release (reused when complete), its medium experiment ids and their mean size."""
    from intake_vbo.sample.release import generate_release, load_layout

    release = generate_release(DATA / "release", versions=(VERSION,), scale=SCALE)
    marker = DATA / "MEDIUM.json"
    stamp = {"release": json.loads((release / "COMPLETE.json").read_text()),
             "shape": [N_EXPERIMENTS, N_ROIS, FRAMES, FOV]}  # fmt: skip
    done = json.loads(marker.read_text()) if marker.exists() else None
    if done is None or done["stamp"] != stamp:
        _progress(f"dask: writing {N_EXPERIMENTS} medium experiment files (once)")
        done = {"stamp": stamp, "ids": _write_medium(release)}
        marker.write_text(json.dumps(done))
    layout = load_layout(release, VERSION)
    sizes = [layout["objects"][f.key]["size"] for f in _experiments(release)]
    return release, done["ids"], int(np.mean(sizes))


def _experiments(release: Path):
    found = [f for f in data_files(release, VERSION) if f.kind == "ophys_experiment"]
    return found[:N_EXPERIMENTS]


def _write_medium(release: Path) -> list[int]:
    """Replace the first experiments' objects by medium files; update the layout."""
    from intake_vbo.sample import nwbwrite
    from intake_vbo.sample import session as S
    from intake_vbo.sample.release import load_layout, object_path

    S.OPHYS_FRAMES, S.FOV = FRAMES, FOV  # the writer reads them when it writes
    template = nwbwrite.template("ophys_experiment", n_cells=N_ROIS)
    layout = load_layout(release, VERSION)
    chosen = _experiments(release)
    for i, file in enumerate(chosen):
        info = dataclasses.replace(template.info, ident=file.ident, revision=i)
        data = _uncompressed(nwbwrite.personalise(template, info))
        digest = hashlib.blake2b(data).hexdigest()
        object_path(release, digest).write_bytes(data)
        layout["objects"][file.key] = {"blake2b": digest, "size": len(data)}
    (release / VERSION / "layout.json").write_text(json.dumps(layout, indent=1))
    return [file.ident for file in chosen]


def _uncompressed(data: bytes) -> bytes:
    """The file with its compressed ophys datasets stored plainly (as large as real ones)."""
    import h5py

    fid = h5py.h5f.open_file_image(data, flags=h5py.h5f.FILE_IMAGE_OPEN_RW)
    with h5py.File(fid) as f:
        found = []
        f["processing/ophys"].visititems(
            lambda name, obj: (
                found.append(obj.name)
                if isinstance(obj, h5py.Dataset) and obj.compression
                else None
            )
        )
        for name in found:
            values, attrs = f[name][()], dict(f[name].attrs)
            del f[name]
            fresh = f.create_dataset(name, data=values)
            for key, value in attrs.items():
                fresh.attrs[key] = value
        f.flush()
        return fid.get_file_image()


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)

"""``fetch``: downloads from a SeaweedFS S3 server on loopback, against curl and AllenSDK 2.16.2.

1. One large NWB file (503 MB of random bytes): ``Cache.fetch`` (streamed, BLAKE2b
   verified, fsynced, renamed into the cache) and the whole ``intake-vbo fetch``
   command, against ``curl -o`` of the same URL onto the same disk, and against
   AllenSDK's ``S3CloudCache.download_data``. Target: at least 0.9x curl's throughput.
2. Peak memory (VmHWM) of those fetches, beside the same process fetching a ~100 KB
   file. Target: flat, under 100 MiB.
3. 200 small NWB files with ``intake-vbo fetch --workers 8`` against AllenSDK's
   ``download_data`` called for each in a loop. Target: 3x faster.
4. A version switch: every file of 1.0.0, then every file of 1.1.0, into one cache.
   The bytes sent for 1.1.0, counted by a proxy in front of the server, against the
   sizes of the 1.1.0 contents 1.0.0 lacks. Target: equal.

Every tool fetches ``<bucket>/<key>?versionId=<id>`` (SeaweedFS keeps object versions).
Before each timed run the server's data files are evicted from the page cache, so it
reads from disk; every run writes to an empty directory, deleted after it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import allensdk_venv
import seaweed
from common import BENCH, REPO, Row, child_env, last_json, run_timed
from fetch_release import BLOCK, DataFile, cli_selection, data_files, large_release, small_release

LARGE_SIZE = 30 * BLOCK  # 503 MB
SMALL_COUNT = 200
WORKERS = 8
SWITCH = ("1.0.0", "1.1.0")
THROUGHPUT_TARGET = 0.9  # of curl's
SPEEDUP_TARGET = 3.0
MEMORY_TARGET = 100  # MiB
MB, MIB = 1e6, 1 << 20
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@dataclass
class Equal(Row):
    """A row whose target is equality with the reference."""

    @property
    def met(self) -> bool | None:
        """Whether ours equals the reference exactly."""
        return None if self.ours is None or self.reference is None else self.ours == self.reference


def run(repeat: int) -> list[Row]:
    """Start SeaweedFS, publish a release, run the benchmarks; twice (large, small files).

    Parameters
    ----------
    repeat : int
        Repetitions per timed figure (the median is reported).

    Returns
    -------
    list of Row
    """
    python = allensdk_venv.ensure()
    with tempfile.TemporaryDirectory(prefix="vbo-bench-fetch-") as tmp:
        work = Path(tmp) / "large"
        work.mkdir()
        release, large = large_release(work, LARGE_SIZE)
        with seaweed.running(work / "weed") as endpoint:
            server = Server(work, endpoint, python, release)
            shutil.rmtree(release)  # the server holds the bytes now
            rows = _large(server, large, repeat)
        shutil.rmtree(work)
        work = Path(tmp) / "small"
        work.mkdir()
        with seaweed.running(work / "weed") as endpoint:
            server = Server(work, endpoint, python, small_release())
            rows += _small(server, repeat)
            rows.append(_switch(server))
    return rows


class Server:
    """A release published on a running SeaweedFS, a catalog of it, and timed clients.

    Parameters
    ----------
    work : Path
        Scratch directory; the server's own files are in ``work / "weed"``.
    endpoint : str
        The server's S3 endpoint.
    python : Path
        The AllenSDK venv's interpreter.
    release : Path
        A generated release, published on construction.
    """

    def __init__(self, work: Path, endpoint: str, python: Path, release: Path):
        from intake_vbo.catalog.build import build
        from intake_vbo.catalog.release import fetch_manifest
        from intake_vbo.sample.s3 import publish

        self.work, self.endpoint, self.python = work, endpoint, python
        self.release, self.files = release, data_files(release, "1.1.0")
        self.bucket = publish(release, endpoint)
        self.catalog = work / "catalog"
        build(self.catalog, self.bucket)
        manifest = json.loads(fetch_manifest(self.bucket, "1.1.0"))
        self.version_ids = {k: e["version_id"] for k, e in manifest["data_files"].items()}

    def url(self, file: DataFile) -> str:
        """The versioned URL of ``file`` (of version 1.1.0)."""
        from intake_vbo.catalog.release import object_url

        return object_url(self.bucket, file.key, self.version_ids[file.file_id])

    def ours(self, mode: str, args: list[str], out: Path | None, **env: str) -> dict:
        """Run ``fetch_ours.py MODE ARGS`` cold (see :meth:`timed`)."""
        cmd = [sys.executable, str(BENCH / "fetch_ours.py"), mode, *args]
        return self.timed(cmd, _env(**env), out)

    def allensdk(self, args: list[str], out: Path | None, endpoint: str | None = None) -> dict:
        """Run ``fetch_allensdk.py ARGS`` cold, its boto3 pointed at ``endpoint``."""
        env = _env(
            AWS_ENDPOINT_URL_S3=endpoint or self.endpoint,
            AWS_DEFAULT_REGION="us-west-2",
            AWS_ACCESS_KEY_ID="loopback",
            AWS_SECRET_ACCESS_KEY="loopback",
            AWS_CONFIG_FILE=str(self.work / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.work / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        return self.timed([str(self.python), str(BENCH / "fetch_allensdk.py"), *args], env, out)

    def curl(self, url: str, out: Path) -> dict:
        """``curl -o`` cold (spawn to exit), then the time an fsync of its file takes."""
        cmd = ["curl", "-sS", "--fail", "--noproxy", "*", "-o", str(out), "-w", "%{size_download}",
               url]  # fmt: skip
        seaweed.evict(self.work / "weed")
        wall, stdout = run_timed(cmd, _env())
        start = time.perf_counter()
        with open(out, "rb") as f:
            os.fsync(f.fileno())
        fsync = time.perf_counter() - start
        out.unlink()
        return {"wall": wall, "seconds": wall, "bytes": int(stdout), "fsync": fsync}

    def timed(self, cmd: list[str], env: dict, out: Path | None) -> dict:
        """Evict the server's data from the page cache, run a child, delete ``out``.

        Returns
        -------
        dict
            The child's JSON line, plus ``wall`` (spawn to exit) and ``stdout``.
        """
        seaweed.evict(self.work / "weed")
        wall, stdout = run_timed(cmd, env)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
        return {**last_json(stdout), "wall": wall, "stdout": stdout}


def _env(**extra: str) -> dict[str, str]:
    """A child's environment: no AWS settings, no VBO_ settings, no HTTP proxies, + ``extra``.

    The children must reach the loopback server directly, whatever the caller's shell says.
    """
    env = {
        k: v
        for k, v in child_env().items()
        if not k.startswith("VBO_") and k.lower() not in PROXY_VARIABLES
    }
    return {**env, **extra}


def _fetch_args(server: Server, files: list[DataFile], version: str = "1.1.0") -> list[str]:
    """``intake-vbo fetch`` arguments naming ``files`` of ``version``."""
    return ["fetch", "--catalog", str(server.catalog), "--version", version, *cli_selection(files)]


def _median(runs: list[dict], field: str = "seconds") -> float:
    return statistics.median(r[field] for r in runs)


def _large(server: Server, large: DataFile, repeat: int) -> list[Row]:
    """Benchmarks 1 and 2: the large file, timed, and peak memory."""
    others = [f for f in server.files if f.kind == "ophys_experiment" and f != large]
    small, work = others[0], server.work
    runs: dict[str, list[dict]] = {k: [] for k in ("cache", "cli", "curl", "sdk")}
    for i in range(repeat):
        _progress(f"fetch: one large file, run {i + 1} of {repeat}")
        root = work / f"cache-{i}"
        runs["cache"].append(server.ours("cache", [str(root), server.url(large), large.blake2b],
                                         root))  # fmt: skip
        cli = server.ours("cli", _fetch_args(server, [large]), root, VBO_CACHE_DIR=str(root))
        runs["cli"].append(cli)
        runs["curl"].append(server.curl(server.url(large), work / f"curl-{i}.nwb"))
        sdk_dir = work / f"allensdk-{i}"
        runs["sdk"].append(server.allensdk([str(sdk_dir), "1.1.0", large.file_id], sdk_dir))
    root = work / "cache-small"
    small_cache = server.ours("cache", [str(root), server.url(small), small.blake2b], root)
    small_cli = server.ours("cli", _fetch_args(server, [small]), root, VBO_CACHE_DIR=str(root))
    for name, done in runs.items():
        sizes = {r["bytes"] for r in done if r["bytes"] is not None}
        assert sizes <= {large.size}, f"{name} fetched {sizes} bytes, not {large.size}"
    return _large_rows(runs, large.size, small.size, small_cache, small_cli)


def _large_rows(runs: dict, size: int, small_size: int, small_cache: dict, small_cli: dict):
    def rate(seconds: float) -> str:
        return f"{size / MB / seconds:.0f} MB/s"

    mb, kb = f"{size / MB:.0f} MB", f"{small_size / 1e3:.0f} KB"
    cache, cli, sdk = _median(runs["cache"]), _median(runs["cli"]), _median(runs["sdk"])
    curl = _median(runs["curl"])
    curl_fsync = statistics.median(r["seconds"] + r["fsync"] for r in runs["curl"])
    target = round(1 / THROUGHPUT_TARGET, 2)
    return [
        Row(f"fetch: one {mb} NWB file, Cache.fetch (verified)", cache, curl, "`curl -o`",
            target, faster=False,
            note=f"throughput: ours {rate(cache)} (hashed, fsynced, renamed); curl {rate(curl)}, "
                 f"{rate(curl_fsync)} counting an fsync of its file after it; target 0.9x "
                 f"curl's throughput = {target}x its time"),
        Row(f"fetch: one {mb} NWB file, `intake-vbo fetch` (spawn to exit)",
            _median(runs["cli"], "wall"), curl, "`curl -o`", target, faster=False,
            note=f"of which main() {cli:.2f} s ({rate(cli)}); the rest: interpreter start, "
                 "imports"),
        Row(f"fetch: one {mb} NWB file, Cache.fetch", cache, sdk,
            "AllenSDK S3CloudCache.download_data", faster=True,
            note=f"AllenSDK {rate(sdk)} in its download call (import "
                 f"{_median(runs['sdk'], 'import'):.1f} s and manifest "
                 f"{_median(runs['sdk'], 'open'):.1f} s more); its peak memory "
                 f"{_peak(runs['sdk']):.0f} MiB"),
        Row(f"fetch: peak memory, {mb} file, Cache.fetch", _peak(runs["cache"]),
            small_cache["peak"] / MIB, f"same, a {kb} file", MEMORY_TARGET, unit="MiB",
            note="VmHWM of the fetching process (interpreter and imports included), highest "
                 "of the runs"),
        Row(f"fetch: peak memory, {mb} file, `intake-vbo fetch`", _peak(runs["cli"]),
            small_cli["peak"] / MIB, f"same, a {kb} file", MEMORY_TARGET, unit="MiB",
            note="VmHWM of the `intake-vbo fetch` process, highest of the runs"),
    ]  # fmt: skip


def _peak(done: list[dict]) -> float:
    return max(r["peak"] for r in done) / MIB


def _small(server: Server, repeat: int) -> list[Row]:
    """Benchmark 3: many small files, ours in parallel, AllenSDK one by one."""
    files = server.files[:SMALL_COUNT]
    args = [*_fetch_args(server, files), "--workers", str(WORKERS)]
    ids = [f.file_id for f in files]
    cli, split, sdk = [], [], []
    for i in range(repeat):
        _progress(f"fetch: {len(files)} small files, run {i + 1} of {repeat}")
        root = server.work / f"cache-{i}"
        cli.append(server.ours("cli", args, root, VBO_CACHE_DIR=str(root)))
        split.append(server.ours("split", args, root, VBO_CACHE_DIR=str(root)))
        sdk_dir = server.work / f"allensdk-{i}"
        sdk.append(server.allensdk([str(sdk_dir), "1.1.0", *ids], sdk_dir))
    total = sum(f.size for f in files)
    assert all(r["bytes"] == total for r in split + sdk), "a tool fetched the wrong bytes"
    loop = _median(sdk)
    sdk_note = (f"AllenSDK: its loop only (import {_median(sdk, 'import'):.1f} s and manifest "
                f"{_median(sdk, 'open'):.1f} s more)")  # fmt: skip
    size = f"{total / MB:.1f} MB"
    name = f"fetch: {len(files)} small NWB files"
    return [
        Row(f"{name}, `intake-vbo fetch --workers {WORKERS}` (spawn to exit)",
            _median(cli, "wall"), loop, "AllenSDK download_data, one by one", SPEEDUP_TARGET,
            faster=True,
            note=f"{size}; ours: main() {_median(cli):.2f} s, of which resolving the "
                 f"{len(files)} ids in the catalog {_median(split, 'resolve'):.2f} s; {sdk_note}"),
        Row(f"{name}, fetch_many alone ({WORKERS} workers)", _median(split), loop,
            "AllenSDK download_data, one by one", SPEEDUP_TARGET, faster=True,
            note="ours: the download step of `intake-vbo fetch` (cache.fetch_many over the "
                 "resolved URLs), timed in-process"),
    ]  # fmt: skip


def _switch(server: Server) -> Row:
    """Benchmark 4: fetch all of version A, then all of B, through a byte-counting proxy."""
    sys.path.insert(0, str(REPO / "tests"))
    from faultproxy import FaultProxy  # the tests' proxy: with no faults, it counts bytes

    a, b = SWITCH
    _progress(f"fetch: version switch {a} -> {b}")
    release = server.release
    before = {f.blake2b for f in data_files(release, a)}
    new = {f.blake2b: f.size for f in data_files(release, b) if f.blake2b not in before}
    ours, sdk, reported = {}, {}, ""
    cache, sdk_dir = server.work / "switch-cache", server.work / "switch-allensdk"
    with FaultProxy(server.endpoint) as proxy:
        bucket = f"{proxy.url}/visual-behavior-ophys-data/"
        for version in SWITCH:
            proxy.reset()
            args = ["fetch", "--catalog", str(server.catalog), "--version", version, "--all"]
            done = server.ours("cli", args, None, VBO_BUCKET_URL=bucket, VBO_CACHE_DIR=str(cache))
            ours[version] = sum(proxy.sent.values())
            reported = re.search(r"\(([\d.]+) MB transferred\)", done["stdout"]).group(1)
        for version in SWITCH:
            proxy.reset()
            server.allensdk([str(sdk_dir), version, "all"], None, endpoint=proxy.url)
            sdk[version] = sum(proxy.sent.values())
    shutil.rmtree(cache)
    shutil.rmtree(sdk_dir)
    return Equal(
        f"fetch: version switch {a} -> {b}, bytes sent for {b}", ours[b], sum(new.values()),
        f"sizes of the {len(new)} contents {a} lacks", 1.0, faster=False, unit="B",
        note=f"counted by a proxy in front of the server (bodies of every response); "
             f"{ours[a]} B sent for {a} first; `intake-vbo fetch` itself reported "
             f"{reported} MB; AllenSDK sent {sdk[b]} B for the same switch (with its manifest "
             "and listings)",
    )  # fmt: skip


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)

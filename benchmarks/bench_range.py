"""``range``: streamed reads and parallel downloads of the large experiment, over a shaped link.

The realistic-size experiment (``bench_views.ensure_large_file()``, 478 MB written by
AllenSDK's writers) is uploaded once per run to a SeaweedFS S3 server on loopback
(``seaweed.py``, versioned: every client reads ``?versionId=`` URLs), and read
through ``shaper.py``, a proxy of ours that caps each connection at 25 MB/s and adds
a 20 ms round trip per request: a distant server, on one machine.

0. The shaper's own ceiling: ``curl -o /dev/null`` of the file through it, unshaped,
   on one connection and as 8 concurrent ranges, beside the same straight to the
   server. It must carry well over 100 MB/s for figure 4's 4x to be visible.
1. ``open_url`` + ``open_experiment`` + ``max_projection``, cold (fresh block store,
   fresh process, timed after its imports): bytes (target under 5% of the file) and
   time, against ``curl -o`` of the whole file (target 10x faster) and against
   remfile 0.1.15 + h5py reading the same dataset (``remfile_venv.py``; target no
   slower, at most 1.5x its bytes). Bytes and requests are counted by the shaper.
2. The same again on the same block store: requests (target 0).
3. ``trials`` + ``stimulus_presentations`` + ``dff_traces``, cold: bytes and time
   against the whole download (reported).
4. ``Cache.fetch`` of the file over 8 connections (16 MiB parts) against ``curl -o``
   over one, both shaped (target 4x faster); and unshaped, straight to the server,
   8 connections against ``--connections 1`` (target not slower).

The server's data is evicted from the page cache before each timed run.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bench_views
import remfile_venv
import seaweed
from common import BENCH, Row, child_env, last_json, run_timed
from shaper import Shaper

RATE, RTT = 25e6, 0.020  # per connection; per request
CONNECTIONS = 8
DATASET = "processing/ophys/images/max_projection"
DFF = "processing/ophys/dff/traces/data"
FIRST_LOOK = "trials,stimulus_presentations,dff_traces"
CEILING_TARGET = 100e6  # bytes per second through the unshaped shaper, 8 connections
MB = 1e6
BUCKET, KEY = "vbo-bench-range", "behavior_ophys_experiment_large.nwb"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
LINK = f"{RATE / MB:.0f} MB/s per connection, {RTT * 1e3:.0f} ms per request"


def run(repeat: int) -> list[Row]:
    """Serve the large experiment on SeaweedFS behind the shaper; measure every figure.

    Parameters
    ----------
    repeat : int
        Repetitions per figure (the median is reported).

    Returns
    -------
    list of Row
    """
    path = bench_views.ensure_large_file()
    remfile_python = remfile_venv.ensure()
    _progress("range: hashing the large experiment, starting SeaweedFS, uploading it")
    digest = _blake2b(path)
    with tempfile.TemporaryDirectory(prefix="vbo-bench-range-") as tmp:
        work = Path(tmp)
        with seaweed.running(work / "weed") as endpoint, Shaper(endpoint) as shaper:
            key = _upload(endpoint, path)
            size = path.stat().st_size
            bench = Bench(work, endpoint, shaper, key, size, digest, str(remfile_python))
            rows = bench.ceiling(repeat)
            rows += bench.streamed(repeat)
            rows += bench.parallel(repeat)
    return rows


@dataclass
class Bench:
    """The served file, the shaper in front of its server, and the timed clients."""

    work: Path
    endpoint: str
    shaper: Shaper
    key: str  # /bucket/key?versionId=...
    size: int
    digest: str
    remfile_python: str

    def url(self, shaped: bool = True) -> str:
        """The file's URL through the shaper, or straight to the server."""
        return (self.shaper.url if shaped else self.endpoint) + self.key

    def measure(self, cmd: list[str], rate=None, rtt=0.0, **env: str) -> dict:
        """Run ``cmd`` cold through the shaper set to ``rate`` and ``rtt``.

        Returns
        -------
        dict
            The child's JSON line, ``wall`` (spawn to exit) and the shaper's counts:
            ``sent`` (body bytes), ``requests_seen``, ``connections``.
        """
        self.shaper.shape(rate, rtt)
        seaweed.evict(self.work / "weed")
        self.shaper.reset()
        wall, stdout = run_timed(cmd, _env(**env))
        counts = self.shaper.reset()
        return {**last_json(stdout), "wall": wall, "sent": counts.sent,
                "requests_seen": counts.requests, "connections": counts.connections}  # fmt: skip

    def ours(self, root: Path, names: str, rate=RATE, rtt=RTT) -> dict:
        """``range_child.py ours``: stream ``names`` with the block store at ``root``."""
        cmd = [sys.executable, str(BENCH / "range_child.py"), "ours", str(root), self.url(),
               self.digest, names]  # fmt: skip
        return self.measure(cmd, rate, rtt)

    def remfile(self) -> dict:
        """``range_child.py remfile``: the anchor reads max_projection, shaped."""
        cmd = [self.remfile_python, str(BENCH / "range_child.py"), "remfile", self.url(), DATASET]
        return self.measure(cmd, RATE, RTT)

    def curl(self, out: str, shaped: bool, rate=RATE, rtt=RTT, ranges: int = 1) -> dict:
        """``curl -o out`` of the whole file (``ranges`` > 1: as that many concurrent ranges)."""
        self.shaper.shape(rate, rtt)
        seaweed.evict(self.work / "weed")
        self.shaper.reset()
        step = -(-self.size // ranges)
        procs, start = [], time.perf_counter()
        for lo in range(0, self.size, step):
            part = ["-r", f"{lo}-{min(self.size, lo + step) - 1}"] if ranges > 1 else []
            cmd = ["curl", "-sS", "--fail", "--noproxy", "*", "-o", out, *part,
                   self.url(shaped)]  # fmt: skip
            procs.append(subprocess.Popen(cmd, env=_env()))
        if any(p.wait() for p in procs):
            raise RuntimeError("curl failed")
        wall = time.perf_counter() - start
        counts = self.shaper.reset()
        if out != "/dev/null":
            got = Path(out).stat().st_size
            Path(out).unlink()
            if got != self.size:
                raise RuntimeError(f"curl wrote {got} bytes, not {self.size}")
        return {"wall": wall, "seconds": wall, "sent": counts.sent,
                "requests_seen": counts.requests}  # fmt: skip

    def fetch(self, root: Path, connections: int, shaped: bool) -> dict:
        """``Cache(root).fetch`` (verified) over ``connections``, in a fresh process."""
        cmd = [sys.executable, str(BENCH / "fetch_ours.py"), "cache", str(root),
               self.url(shaped), self.digest]  # fmt: skip
        done = self.measure(cmd, RATE if shaped else None, RTT if shaped else 0.0,
                            VBO_CONNECTIONS=str(connections))  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
        if done["bytes"] != self.size:
            raise RuntimeError(f"Cache.fetch gave {done['bytes']} bytes, not {self.size}")
        return done

    def ceiling(self, repeat: int) -> list[Row]:
        """Figure 0: curl to /dev/null through the unshaped shaper and straight, 1 and 8 ways."""
        runs: dict[str, list[dict]] = {k: [] for k in ("via1", "direct1", "via8", "direct8")}
        for i in range(repeat):
            _progress(f"range: the shaper's ceiling, run {i + 1} of {repeat}")
            for ranges in (1, CONNECTIONS):
                runs[f"via{ranges}"].append(self.curl("/dev/null", True, None, 0.0, ranges))
                runs[f"direct{ranges}"].append(self.curl("/dev/null", False, None, 0.0, ranges))
        via1, direct1 = _median(runs["via1"]), _median(runs["direct1"])
        via8, direct8 = _median(runs["via8"]), _median(runs["direct8"])
        rate = self._rate
        return [
            Row("range: shaper ceiling, unshaped, 1 connection (curl to /dev/null)", via1,
                direct1, "the same, straight to SeaweedFS", faster=False,
                note=f"{self.size / MB:.0f} MB through the shaper at {rate(via1)}; "
                     f"straight {rate(direct1)}"),
            Row(f"range: shaper ceiling, unshaped, {CONNECTIONS} connections", via8, direct8,
                "the same, straight to SeaweedFS", round(self.size / CEILING_TARGET, 2),
                note=f"{CONNECTIONS} concurrent curl ranges: {rate(via8)} through the shaper, "
                     f"{rate(direct8)} straight; target: over {CEILING_TARGET / MB:.0f} MB/s "
                     f"(figure 4 asks {CONNECTIONS} x {RATE / MB:.0f} MB/s of it); bodies "
                     "move by os.splice, no Python per byte"),
        ]  # fmt: skip

    def _rate(self, seconds: float) -> str:
        return f"{self.size / MB / seconds:.0f} MB/s"

    def streamed(self, repeat: int) -> list[Row]:
        """Figures 1-3, each repetition cold (its own block store), curl beside them."""
        runs: dict[str, list[dict]] = {k: [] for k in ("cold", "warm", "remfile", "first",
                                                       "curl")}  # fmt: skip
        for i in range(repeat):
            _progress(f"range: streamed reads and curl over the shaped link, run {i + 1} of "
                      f"{repeat}")  # fmt: skip
            root = self.work / f"blocks-{i}"
            runs["cold"].append(self.ours(root, "max_projection"))
            runs["warm"].append(self.ours(root, "max_projection"))
            runs["remfile"].append(self.remfile())
            runs["first"].append(self.ours(self.work / f"first-{i}", FIRST_LOOK))
            runs["curl"].append(self.curl(str(self.work / "curl.nwb"), True))
            shutil.rmtree(root)
            shutil.rmtree(self.work / f"first-{i}")
        pixels = {r["md5"] for r in runs["cold"] + runs["warm"] + runs["remfile"]}
        assert len(pixels) == 1, f"the readers disagree on max_projection: {pixels}"
        self.curl_runs, self.first_runs = runs["curl"], runs["first"]
        return _streamed_rows(runs, self.size, _layout(bench_views.LARGE, DFF))

    def parallel(self, repeat: int) -> list[Row]:
        """Figure 4: Cache.fetch in parts, shaped against curl, unshaped against one connection."""
        runs: dict[str, list[dict]] = {k: [] for k in ("shaped", "many", "one", "curl")}
        for i in range(repeat):
            _progress(f"range: parallel downloads, run {i + 1} of {repeat}")
            root = self.work / f"cache-{i}"
            runs["shaped"].append(self.fetch(root, CONNECTIONS, shaped=True))
            # the two unshaped runs alternate in order: neither always follows a big write
            for name in ("many", "one") if i % 2 == 0 else ("one", "many"):
                runs[name].append(self.fetch(root, CONNECTIONS if name == "many" else 1, False))
            runs["curl"].append(self.curl(str(self.work / "curl.nwb"), False, None, 0.0))
        shaped, curl = _median(runs["shaped"]), _median(self.curl_runs)
        many, one, direct = _median(runs["many"]), _median(runs["one"]), _median(runs["curl"])
        mb, rate = f"{self.size / MB:.0f} MB", self._rate
        seen = runs["shaped"][-1]
        return [
            Row(f"range: {mb} download, Cache.fetch on {CONNECTIONS} connections, shaped",
                shaped, curl, "`curl -o`, one connection, shaped", 4.0, faster=True,
                note=f"{LINK}; ours {rate(shaped)} (BLAKE2b-verified, fsynced; the fetch "
                     f"call, imports excluded: spawn to exit {_median(runs['shaped'], 'wall'):.1f}"
                     f" s), {seen['requests_seen']} requests on {seen['connections']} "
                     f"connections; curl {rate(curl)}"),
            Row(f"range: {mb} download, Cache.fetch on {CONNECTIONS} connections, unshaped",
                many, one, "Cache.fetch, --connections 1", 1.0, faster=True,
                note=f"straight to SeaweedFS on loopback: {CONNECTIONS} connections "
                     f"{rate(many)}, one {rate(one)}; `curl -o` {rate(direct)} (unverified, "
                     "not fsynced)"),
            Row("range: open + trials + stimulus_presentations + dff_traces, streamed, cold",
                _median(self.first_runs), shaped,
                f"Cache.fetch of the whole file, {CONNECTIONS} connections, shaped", faster=False,
                note="the streamed reader is serial (h5py holds one lock), so it reads on one "
                     "connection; a first look that needs dF/F of every cell is faster "
                     "downloaded whole over several connections on this link"),
        ]  # fmt: skip


def _streamed_rows(runs: dict, size: int, dff: str) -> list[Row]:
    from intake_vbo.transfer.streamfile import BLOCK

    cold, warm, sdk, first = runs["cold"], runs["warm"], runs["remfile"], runs["first"]
    cold_s, cold_b = _median(cold), _median(cold, "sent")
    sdk_s, sdk_b = _median(sdk), _median(sdk, "sent")
    first_s, first_b = _median(first), _median(first, "sent")
    curl = _median(runs["curl"])
    mb = f"{size / MB:.0f} MB"

    def split(done: list[dict]) -> str:
        return (f"import {_median(done, 'import'):.2f} s (not counted), open "
                f"{_median(done, 'open'):.2f} s, {_median(done, 'requests_seen'):.0f} requests on "
                f"{_median(done, 'connections'):.0f} connection(s), "
                f"{_median(done, 'sent') / MB:.2f} MB")  # fmt: skip

    return [
        Row("range: open + max_projection streamed, cold: bytes", cold_b, size,
            f"the whole file, {mb}", 0.05, faster=False, unit="B",
            note=f"{cold_b / size:.1%} of the file, counted by the shaper (bodies sent); "
                 "the reader counted "
                 f"{_median(cold, 'received'):.0f} B in {_median(cold, 'requests'):.0f} "
                 f"requests; {split(cold)}"),
        Row("range: open + max_projection streamed, cold", cold_s, curl,
            "`curl -o` of the whole file, shaped", 10.0, faster=True,
            note=f"{LINK}, through the shaper; fresh process and block store, timed after "
                 f"its imports (spawn to exit {_median(cold, 'wall'):.2f} s); curl "
                 f"{size / MB / curl:.1f} MB/s"),
        Row("range: open + max_projection streamed, cold", cold_s, sdk_s,
            "remfile 0.1.15 + h5py, same link", 1.0, faster=True,
            note=f"both timed after their imports; runs (s): ours {_each(cold)}, remfile "
                 f"{_each(sdk)}; remfile: {split(sdk)}; the same pixels (MD5) from both"),
        Row("range: open + max_projection streamed, cold: bytes", cold_b, sdk_b,
            "remfile 0.1.15 + h5py", 1.5, faster=False, unit="B",
            note=f"bodies sent, counted by the shaper; ours fetches whole {BLOCK >> 10} KiB "
                 "blocks (intake_vbo.transfer.streamfile.BLOCK) around each scattered HDF5 "
                 "metadata "
                 "read, remfile 100-200 KiB chunks; remfile's first GET (no Range, to "
                 "learn the size, closed after the headers) counts what was sent before it "
                 "hung up"),
        Row("range: open + max_projection again, warm: requests", _median(warm, "requests_seen"),
            None, "", 1.0, unit="requests",
            note=f"the same block store, a fresh process: {_median(warm):.3f} s after imports, "
                 f"{_median(warm, 'sent'):.0f} B"),
        Row("range: open + trials + stimulus_presentations + dff_traces, streamed, cold: bytes",
            first_b, size, f"the whole file, {mb}", faster=False, unit="B",
            note=f"{first_b / size:.0%} of the file; dF/F is stored time x cells ({dff}): "
                 "reading every cell reads every row, the whole dataset; the rest is the "
                 "tables, the timestamps and the ROI metadata"),
        Row("range: open + trials + stimulus_presentations + dff_traces, streamed, cold",
            first_s, curl, "`curl -o` of the whole file, shaped", faster=True,
            note=f"{LINK}; {first_b / MB:.1f} MB at {first_b / MB / first_s:.1f} MB/s; "
                 f"{split(first)}"),
    ]  # fmt: skip


def _layout(path: Path, name: str) -> str:
    """How ``name`` is stored in the local file: shape, type, layout, size."""
    import h5py

    with h5py.File(path, "r") as f:
        data = f[name]
        layout = f"chunks {data.chunks}" if data.chunks else "contiguous"
        shape = " x ".join(f"{n:,}" for n in data.shape)
        return f"{shape} {data.dtype}, {layout}, {data.nbytes / MB:.0f} MB"


def _upload(endpoint: str, path: Path) -> str:
    """Put the file in a versioned bucket; return ``/bucket/key?versionId=...``."""
    from intake_vbo.sample.s3 import create_bucket, s3_client

    create_bucket(endpoint, BUCKET)
    with open(path, "rb") as body:
        version = s3_client(endpoint).put_object(Bucket=BUCKET, Key=KEY, Body=body)["VersionId"]
    return f"/{BUCKET}/{KEY}?versionId={version}"


def _blake2b(path: Path) -> str:
    digest = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _env(**extra: str) -> dict[str, str]:
    """A child's environment: no AWS, VBO_ or proxy settings, no stream cap; + ``extra``."""
    env = {
        k: v
        for k, v in child_env().items()
        if not k.startswith("VBO_") and k.lower() not in PROXY_VARIABLES
    }
    return {**env, **extra}


def _each(runs: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.3f}" for r in runs)


def _median(runs: list[dict], field: str = "seconds") -> float:
    return statistics.median(r[field] for r in runs)


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)

"""Large files in parts over several connections, against moto behind the fault proxy.

moto reads a whole object for every ranged GET, so the objects are small and the
settings scaled down to match: parts of 256 KiB, files over 512 KiB in parts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Uploaded, upload
from faultproxy import FaultProxy

from intake_vbo.base.errors import VboError
from intake_vbo.cli import main
from intake_vbo.transfer.cache import Cache, fetch_many
from intake_vbo.transfer.http import Backoff
from intake_vbo.transfer.journal import Journal
from intake_vbo.transfer.parts import Parallel

BUCKET = "intake-vbo-parallel-tests"
PREFIX = "visual-behavior-ophys/behavior_ophys_experiments/"
WORKER = Path(__file__).with_name("cache_worker.py")
REPO = Path(__file__).resolve().parents[1]
PART, THRESHOLD, CONNECTIONS = 256 << 10, 512 << 10, 4
SETTINGS = Parallel(connections=CONNECTIONS, part_size=PART, threshold=THRESHOLD)
ENV = {"VBO_CONNECTIONS": "4", "VBO_PART_SIZE": "256K", "VBO_PARALLEL_THRESHOLD": "512K"}


def spans(obj: Uploaded) -> list[tuple[int, int]]:
    """The parts the settings above cut ``obj`` into."""
    edges = [*range(0, len(obj.data), PART), len(obj.data)]
    return list(zip(edges, edges[1:], strict=False))


@dataclass
class Objects:
    big: Uploaded  # 3 MiB + 1000 bytes: 13 parts, the last one short
    other: Uploaded  # 2 MiB
    mid: Uploaded  # over one part, under the threshold
    small: Uploaded  # under one part
    empty: Uploaded


@pytest.fixture(scope="module")
def objects(s3_endpoint) -> Objects:
    rng = random.Random(20240607)

    def put(name: str, size: int) -> Uploaded:
        return upload(s3_endpoint, BUCKET, f"{PREFIX}{name}.nwb", rng.randbytes(size))

    return Objects(put("big", 3 * (1 << 20) + 1000), put("other", 2 << 20),
                   put("mid", 400_000), put("small", 100_000), put("empty", 0))  # fmt: skip


@pytest.fixture
def proxy(objects, s3_endpoint):
    with FaultProxy(s3_endpoint, seed=5) as proxy:
        proxy.retry_after = "0"
        yield proxy


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setenv("VBO_BACKOFF_BASE", "0.01")


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path / "cache", parallel=SETTINGS)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def work_files(cache: Cache, obj: Uploaded) -> dict[str, Path]:
    return {
        "lock": cache.root / "locks" / f"{obj.digest}.lock",
        "part": cache.root / "partial" / f"{obj.digest}.part",
        "journal": cache.root / "partial" / f"{obj.digest}.journal",
    }


def ranges(spans) -> list[str]:
    return sorted(f"bytes={lo}-{hi - 1}" for lo, hi in spans)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def worker(root: Path, obj: Uploaded, base: str, ready=None, crash_at=None) -> subprocess.Popen:
    """``cache_worker.py`` (see there) in a process of its own, with the settings above."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO), "VBO_BACKOFF_BASE": "0.01"}
    if crash_at:
        env["VBO_CRASH_AT"] = crash_at
    args = [sys.executable, str(WORKER), str(root), obj.url(base), obj.digest]
    return subprocess.Popen([*args, *([str(ready)] if ready else [])], env=env,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip


def wait_until(condition, alive) -> None:
    """Wait for ``condition()`` while ``alive()``; the deadline only turns a hang into a failure."""
    deadline = time.monotonic() + 60
    while not condition():
        assert alive(), "the download finished before it was expected to"
        assert time.monotonic() < deadline, "the download never got there"
        time.sleep(0.01)


def held_parts(proxy: FaultProxy, cache: Cache, obj: Uploaded, count: int) -> Path:
    """Fetch ``obj`` with every part request held at the proxy until ``count`` requests
    (the first response's included) have arrived; then let them all go."""
    first, parts = threading.Event(), threading.Event()
    proxy.hold = first
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(cache.fetch, obj.url(proxy.url), obj.digest)
        try:
            wait_until(lambda: proxy.requests[obj.path] == 1, alive=lambda: not job.done())
            proxy.hold = parts  # the requests after the first wait ...
            first.set()  # ... and the first response comes: its headers start the parts
            wait_until(lambda: proxy.requests[obj.path] >= count, alive=lambda: not job.done())
            # every connection the download may open is now waiting at the proxy
            assert proxy.requests[obj.path] == count
            if cache.parallel.slots is not None:
                assert not cache.parallel.slots.acquire(blocking=False)  # the cap is used up
        finally:
            first.set()
            parts.set()
        return job.result()


def test_a_large_file_comes_in_parts_over_several_connections_at_once(objects, proxy, cache):
    obj = objects.big
    # The first response, then CONNECTIONS part requests in flight at once: the three
    # started on its headers and its own connection, once its part was in.
    path = held_parts(proxy, cache, obj, 1 + CONNECTIONS)
    assert path == cache.path(obj.digest) and path.read_bytes() == obj.data
    head, *rest = proxy.log
    assert head.range == f"bytes=0-{PART - 1}"  # the first part: the size and ETag from it
    assert sorted(r.range for r in rest) == ranges(spans(obj)[1:])  # each other part once
    assert {r.status for r in proxy.log} == {206}
    assert proxy.sent[obj.path] == len(obj.data)
    assert files_under(cache.root) == sorted([work_files(cache, obj)["lock"], path])


def test_a_shared_cap_bounds_the_connections_of_every_file(objects, proxy, tmp_path):
    obj = objects.big
    cache = Cache(tmp_path / "cache", parallel=SETTINGS.capped(2))
    path = held_parts(proxy, cache, obj, 1 + 2)  # four per file, but two in all
    assert path.read_bytes() == obj.data
    assert sorted(r.range for r in proxy.log[1:]) == ranges(spans(obj)[1:])


def test_small_files_keep_one_connection(objects, proxy, cache):
    for obj in (objects.small, objects.mid):
        assert cache.fetch(obj.url(proxy.url), obj.digest).read_bytes() == obj.data
    assert [r.range for r in proxy.log] == [
        f"bytes=0-{PART - 1}",  # small: all of it in the first response
        f"bytes=0-{PART - 1}",  # mid: the first part, then the rest on the same connection
        f"bytes={PART}-",
    ]
    assert proxy.sent[objects.mid.path] == len(objects.mid.data)
    empty = objects.empty  # a Range to an empty object is answered 416: it is still fetched
    assert cache.fetch(empty.url(proxy.url), empty.digest).read_bytes() == b""
    assert [r.status for r in proxy.log if r.path == empty.path] == [416]


def test_parts_through_injected_faults_arrive_verified(objects, proxy, cache):
    proxy.rate = 0.4  # 500, 503, resets in headers and bodies, truncated and slow bodies
    # Which request draws which fault depends on thread timing: enough attempts that a
    # part meeting six faults in a row (0.4**6, some 20 parts) cannot fail the test.
    cache = Cache(cache.root, backoff=Backoff(attempts=20), parallel=SETTINGS)
    items = [(o.key, o.url(proxy.url), o.digest) for o in (objects.big, objects.other)]
    report = fetch_many(cache, items, workers=2, progress=False, connections=3)
    assert report.failed == []
    assert sum(proxy.injected.values()) >= 6 and len(proxy.injected) >= 4, proxy.injected
    for obj in (objects.big, objects.other):
        assert report.paths[obj.key].read_bytes() == obj.data
        # a retried part resumes after what it got: at most a chunk per fault is sent again
        faults = sum(1 for r in proxy.log if r.path == obj.path and r.fault)
        assert len(obj.data) <= proxy.sent[obj.path] <= len(obj.data) + faults * (64 << 10)
    assert not list((cache.root / "partial").iterdir())


def test_a_first_response_cut_short_hands_its_part_to_the_others(objects, proxy, cache):
    obj = objects.big
    proxy.script = ["truncate"]  # the first response stops halfway through its part
    assert cache.fetch(obj.url(proxy.url), obj.digest).read_bytes() == obj.data
    head, *rest = proxy.log
    assert head.fault == "truncate" and head.sent == PART // 2
    again = [r for r in rest if r.range.endswith(f"-{PART - 1}")]
    assert len(again) == 1 and again[0].status == 206  # the rest of part 0, once
    assert sorted(r.range for r in rest if r is not again[0]) == ranges(spans(obj)[1:])


@pytest.mark.parametrize("step", ["parts:part-written", "download:before-rename"])
def test_a_killed_download_resumes_with_only_the_missing_parts(objects, proxy, cache, step):
    obj, work = objects.big, work_files(cache, objects.big)
    child = worker(cache.root, obj, proxy.url, crash_at=step)
    assert child.communicate(timeout=60)[0] == "" and child.returncode == -signal.SIGKILL
    assert files_under(cache.root) == sorted(work.values())  # nothing at a final path
    plan, done = Journal(work["journal"]).load()
    expected = spans(obj)
    assert plan.spans() == expected and plan.size == len(obj.data)
    kept = work["part"].read_bytes()
    assert all(kept[lo:hi] == obj.data[lo:hi] for lo, hi in (expected[i] for i in done))
    if step == "parts:part-written":
        assert 0 < len(done) < len(expected)  # killed right after the first parts were journaled
    else:
        assert done == set(range(len(expected)))  # all in and verified, not yet renamed
    proxy.reset()
    path = cache.fetch(obj.url(proxy.url), obj.digest)
    assert path.read_bytes() == obj.data
    missing = [span for i, span in enumerate(expected) if i not in done]
    assert sorted(r.range for r in proxy.log) == ranges(missing)  # only those, each once
    assert proxy.sent[obj.path] == sum(hi - lo for lo, hi in missing)
    assert files_under(cache.root) == sorted([work["lock"], path])


def test_a_journal_that_lies_costs_a_download_not_a_wrong_file(objects, proxy, cache):
    obj, work = objects.big, work_files(cache, objects.big)
    child = worker(cache.root, obj, proxy.url, crash_at="download:before-rename")
    child.communicate(timeout=60)
    with open(work["part"], "r+b") as f:  # a part the journal vouches for, damaged
        f.seek(PART + 10)
        f.write(bytes([obj.data[PART + 10] ^ 1]))
    proxy.reset()
    assert cache.fetch(obj.url(proxy.url), obj.digest).read_bytes() == obj.data
    assert proxy.sent[obj.path] == len(obj.data)  # all of it again, in parts
    assert not work["journal"].exists() and not work["part"].exists()


@pytest.mark.parametrize("fault", ["norange", "badrange", "nocrange", "etag", "412"])
def test_a_part_misanswered_falls_back_to_one_connection_once(objects, proxy, cache, caplog, fault):
    obj = objects.big
    proxy.script = ["pass", fault]  # the first response is right; a part's is not
    with caplog.at_level(logging.WARNING, logger="intake_vbo.transfer.parts"):
        path = cache.fetch(obj.url(proxy.url), obj.digest)
    assert path.read_bytes() == obj.data
    [wrong] = [r for r in proxy.log if r.fault == fault]
    assert wrong.range != f"bytes=0-{PART - 1}"  # a part's request
    whole = proxy.log[-1]  # then the whole file, from the start, on one connection
    assert whole.range is None and whole.status == 200 and whole.sent == len(obj.data)
    assert "on one connection" in caplog.text and obj.key in caplog.text


def test_a_server_that_keeps_misanswering_gives_one_clear_line(objects, proxy, cache):
    obj = objects.big
    proxy.script = ["pass"] + ["412"] * 50  # the object "changed" under every later request
    with pytest.raises(VboError) as error:
        cache.fetch(obj.url(proxy.url), obj.digest)
    message = one_line(error)
    assert obj.key in message and "412" in message
    assert not cache.has(obj.digest)
    assert [p.parent.name for p in files_under(cache.root)] == ["locks"]


def test_a_part_that_keeps_failing_fails_the_file_and_a_rerun_keeps_the_rest(objects, proxy, cache):
    obj = objects.big
    proxy.script, proxy.faults, proxy.rate = ["pass"], ("500",), 1.0  # all but the first
    with pytest.raises(VboError) as error:
        cache.fetch(obj.url(proxy.url), obj.digest)
    message = one_line(error)
    assert obj.key in message and "HTTP 500" in message and "part bytes=" in message
    assert not cache.has(obj.digest)
    proxy.reset()
    proxy.rate = 0.0
    assert cache.fetch(obj.url(proxy.url), obj.digest).read_bytes() == obj.data
    assert f"bytes=0-{PART - 1}" not in [r.range for r in proxy.log]  # the first part was kept
    assert proxy.sent[obj.path] == len(obj.data) - PART


def test_processes_fetching_one_large_file_transfer_it_once(objects, proxy, cache, tmp_path):
    obj, ready = objects.big, tmp_path / "ready"
    ready.mkdir()
    proxy.hold = threading.Event()  # held until all four processes are at the file's lock
    try:
        children = [worker(cache.root, obj, proxy.url, ready) for _ in range(4)]
        wait_until(
            lambda: len(list(ready.iterdir())) == 4 and proxy.requests[obj.path] >= 1,
            alive=lambda: all(child.poll() is None for child in children),
        )
    finally:
        proxy.hold.set()
    results = [json.loads(child.communicate(timeout=60)[0]) for child in children]
    assert [child.returncode for child in children] == [0] * 4
    assert {r["path"] for r in results} == {str(cache.path(obj.digest))}
    assert sorted(r["received"] or 0 for r in results) == [0, 0, 0, len(obj.data)]
    assert proxy.sent[obj.path] == len(obj.data)
    assert sorted(r.range for r in proxy.log) == ranges(spans(obj))
    assert cache.path(obj.digest).read_bytes() == obj.data


def test_fetch_command_takes_connections(catalog_dir, bucket_url, s3_endpoint, tmp_path,
                                         monkeypatch, capsys):  # fmt: skip
    import intake

    from intake_vbo.drivers.resolve import catalog_version

    cat = intake.open_catalog(str(catalog_dir / "catalog.yaml"))
    ids = [int(i) for i in cat.latest.ophys_experiments.read().index[:3]]
    with FaultProxy(s3_endpoint) as proxy:
        bucket = bucket_url.rstrip("/").rsplit("/", 1)[1]
        monkeypatch.setenv("VBO_BUCKET_URL", f"{proxy.url}/{bucket}/")  # a mirror: the proxy
        monkeypatch.setenv("VBO_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("VBO_PART_SIZE", "32K")
        monkeypatch.setenv("VBO_PARALLEL_THRESHOLD", "64K")
        argv = ["fetch", "--catalog", str(catalog_dir), "--version", "latest",
                "--ophys-experiment", *map(str, ids), "--workers", "2"]  # fmt: skip
        assert main([*argv, "--connections", "0"]) == 2
        assert "connections must be a whole number >= 1" in capsys.readouterr().err
        assert main([*argv, "--connections", "3"]) == 0
        assert "fetched 3, already cached 0, failed 0" in capsys.readouterr().out
        cache = Cache(tmp_path / "cache")
        for _, url, digest in catalog_version(catalog_dir, "latest").items(experiments=ids):
            data = cache.path(digest).read_bytes()
            assert hashlib.blake2b(data).hexdigest() == digest
            parts = -(-len(data) // (32 << 10))  # files over 64K come in 32K parts
            path = url.split("?")[0][len(proxy.url) :]
            assert proxy.requests[path] == (parts if len(data) > 64 << 10 else min(parts, 2))

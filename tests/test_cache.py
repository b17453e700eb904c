"""The download cache against moto's real S3 server on loopback, behind a fault proxy."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cache_worker import ReportingCache
from conftest import Uploaded, upload
from faultproxy import FaultProxy

from intake_vbo.base.errors import VboError
from intake_vbo.base.settings import cache_dir
from intake_vbo.transfer.cache import Cache, fetch_many
from intake_vbo.transfer.download import CHUNK, hash_file
from intake_vbo.transfer.http import Backoff
from intake_vbo.transfer.upkeep import adopt, verify

BUCKET = "intake-vbo-cache-tests"  # moto's backend is shared by every server in a process
PREFIX = "visual-behavior-ophys/behavior_sessions/"
WORKER = Path(__file__).with_name("cache_worker.py")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Release:
    endpoint: str
    objects: list[Uploaded]
    big: Uploaded  # 6 MiB, for interrupted downloads


@pytest.fixture(scope="module")
def release(s3_endpoint):
    rng = random.Random(20240501)

    def put(key: str, data: bytes) -> Uploaded:
        return upload(s3_endpoint, BUCKET, key, data)

    objects = [
        put(f"{PREFIX}behavior_session_{i}.nwb", rng.randbytes(rng.randint(200_000, 2_000_000)))
        for i in range(30)
    ]
    put(objects[0].key, b"a newer version of the same key")  # versionId must pick the old one
    big = put(f"{PREFIX}behavior_session_big.nwb", rng.randbytes(6 * CHUNK))
    return Release(s3_endpoint, objects, big)


@pytest.fixture
def proxy(release):
    with FaultProxy(release.endpoint, seed=11) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setenv("VBO_BACKOFF_BASE", "0.01")


@pytest.fixture
def cache(tmp_path):
    """A cache in tmp_path/cache; afterwards, nothing may have been written beside it."""
    before = set(tmp_path.iterdir())
    yield Cache(tmp_path / "cache")
    assert set(tmp_path.iterdir()) - before <= {tmp_path / "cache"}


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


def worker(root: Path, url: str, digest: str, ready=None, crash_at=None) -> subprocess.Popen:
    """``cache_worker.py`` in a process of its own; see there for ``ready``.

    ``crash_at`` names a crash point (intake_vbo.base.crash) where the process kills itself.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "VBO_BACKOFF_BASE": "0.01"}
    if crash_at:
        env["VBO_CRASH_AT"] = crash_at
    args = [sys.executable, str(WORKER), str(root), url, digest, *([str(ready)] if ready else [])]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)


def wait_until(condition, alive) -> None:
    """Wait for something the test's workers do (``condition()``), while ``alive()``.

    The deadline only turns a hang into a failure; no outcome depends on timing.
    """
    deadline = time.monotonic() + 60
    while not condition():
        assert alive(), "a worker finished before it was expected to"
        assert time.monotonic() < deadline, "the workers never got there"
        time.sleep(0.01)


def test_bulk_fetch_through_faults_verifies_every_file(release, proxy, cache):
    proxy.rate = 0.3
    # Thread timing decides which request meets which fault: attempts to spare.
    cache = Cache(cache.root, backoff=Backoff(attempts=20))
    items = [(o.key, o.url(proxy.url), o.digest) for o in release.objects]
    report = fetch_many(cache, items, workers=8, progress=False)
    assert report.failed == []
    assert sorted(report.fetched) == sorted(o.key for o in release.objects)
    assert sum(proxy.injected.values()) >= 5 and len(proxy.injected) >= 3  # faults happened
    for obj in release.objects:
        path = report.paths[obj.key]
        assert path == cache.path(obj.digest) and hash_file(path) == obj.digest
        assert path.stat().st_mode & 0o222 == 0  # read-only
    assert report.bytes_transferred >= sum(len(o.data) for o in release.objects)
    assert not list((cache.root / "partial").iterdir())
    again = fetch_many(cache, items, workers=8, progress=False)
    assert sorted(again.cached) == sorted(report.fetched) and again.bytes_transferred == 0


def test_fetch_many_keeps_successes_collects_failures_shows_one_bar(release, proxy, cache, capsys):
    objects = release.objects[12:15]
    items = [(o.key, o.url(proxy.url), o.digest) for o in objects]
    items.append(("missing", f"{proxy.url}/{BUCKET}/{PREFIX}nowhere.nwb", release.big.digest))
    report = fetch_many(cache, items, workers=2, progress=True)
    assert sorted(report.fetched) == sorted(o.key for o in objects)
    assert [label for label, _ in report.failed] == ["missing"] and "404" in report.failed[0][1]
    assert report.bytes_transferred == sum(len(o.data) for o in objects)
    bar = capsys.readouterr().err.rsplit("\r", 1)[-1]
    assert bar.startswith("fetch: 100%") and "B/s" in bar
    seen = []
    other = release.objects[15]
    cache.fetch(other.url(proxy.url), other.digest, progress=seen.append)
    assert sum(seen) == len(other.data) and len(seen) >= len(other.data) // CHUNK


def test_a_shared_cache_is_group_writable_and_its_files_read_only(release, cache):
    obj = release.objects[16]
    old = os.umask(0o002)
    try:
        path = cache.fetch(obj.url(release.endpoint), obj.digest)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    for folder in (path.parent, cache.root / "partial", cache.root / "locks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o775
    lock = cache.root / "locks" / f"{obj.digest}.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o666  # any user of the disk can take it


@pytest.mark.parametrize("step", ["download:chunk-written", "download:before-rename"])
def test_a_download_killed_at_each_step_leaves_no_damage_and_a_rerun_fetches_the_rest(
    release, proxy, cache, step
):
    obj = release.big
    part = cache.root / "partial" / f"{obj.digest}.part"
    child = worker(cache.root, obj.url(proxy.url), obj.digest, crash_at=step)
    printed = child.communicate(timeout=60)[0]
    assert child.returncode == -signal.SIGKILL and printed == ""
    # No file at a final path: only the lock and a part that holds a prefix of the content
    # (the first chunk, or all of it, verified but not yet renamed into place).
    assert files_under(cache.root) == [cache.root / "locks" / f"{obj.digest}.lock", part]
    kept = part.read_bytes()
    assert kept == obj.data[: CHUNK if step == "download:chunk-written" else len(obj.data)]
    assert not cache.has(obj.digest)
    path = cache.fetch(obj.url(proxy.url), obj.digest)
    assert hash_file(path) == obj.digest and not part.exists()
    if len(kept) == len(obj.data):
        assert len(proxy.log) == 1  # nothing asked for again
    else:
        killed, rerun = proxy.log
        assert rerun.range == f"bytes={len(kept)}-" and rerun.status == 206
        assert rerun.sent == len(obj.data) - len(kept)


def test_truncated_body_resumes_and_a_200_to_a_range_starts_over(release, proxy, cache):
    obj = release.big
    proxy.script = ["truncate"]
    assert hash_file(cache.fetch(obj.url(proxy.url), obj.digest)) == obj.digest
    cut, resume = proxy.log
    assert cut.sent == len(obj.data) // 2
    assert resume.range == f"bytes={cut.sent // CHUNK * CHUNK}-"
    assert cut.sent + resume.sent <= len(obj.data) + CHUNK
    other = release.objects[3]
    proxy.script = ["truncate", "norange"]
    assert hash_file(cache.fetch(other.url(proxy.url), other.digest)) == other.digest
    assert proxy.log[-1].status == 200 and proxy.log[-1].sent == len(other.data)


def test_every_transient_fault_is_retried_and_retry_after_honoured(release, proxy, cache):
    obj = release.objects[4]
    waits = []  # what the retries chose to sleep, recorded instead of slept
    patient = Cache(cache.root, backoff=Backoff(sleep=waits.append))
    proxy.retry_after = "7"
    proxy.script = ["503", "500", "reset-headers", "reset-body", "slow"]
    assert hash_file(patient.fetch(obj.url(proxy.url), obj.digest)) == obj.digest
    assert [r.fault for r in proxy.log] == ["503", "500", "reset-headers", "reset-body", "slow"]
    # One wait per retry: the 503's Retry-After (7 s) despite the tiny backoff base
    # (VBO_BACKOFF_BASE=0.01), then jittered waits within that base's doubling bounds.
    assert len(waits) == 4 and waits[0] == 7.0
    assert all(0 <= wait <= 0.01 * 2**n for n, wait in enumerate(waits[1:], 1)), waits


def test_processes_fetching_one_file_transfer_it_once(release, proxy, cache, tmp_path_factory):
    obj = max(release.objects[:10], key=lambda o: len(o.data))
    ready = tmp_path_factory.mktemp("ready")
    # The one download is held until all four processes have found the file missing and
    # reached its lock, so they surely overlap; then exactly one may transfer it.
    proxy.hold = threading.Event()
    try:
        children = [worker(cache.root, obj.url(proxy.url), obj.digest, ready) for _ in range(4)]
        wait_until(
            lambda: len(list(ready.iterdir())) == 4 and proxy.requests[obj.path] >= 1,
            alive=lambda: all(child.poll() is None for child in children),
        )
    finally:
        proxy.hold.set()
    results = [json.loads(child.communicate(timeout=60)[0]) for child in children]
    assert [child.returncode for child in children] == [0] * 4
    assert {r["path"] for r in results} == {str(cache.path(obj.digest))}
    assert not any(r["present"] for r in results)  # none had it when it asked
    assert sorted(r["received"] or 0 for r in results) == [0, 0, 0, len(obj.data)]
    assert proxy.requests[obj.path] == 1 and proxy.sent[obj.path] == len(obj.data)


def test_threads_fetching_one_file_transfer_it_once(release, proxy, cache, tmp_path_factory):
    obj = release.objects[5]
    shared = ReportingCache(cache.root)
    shared.ready = tmp_path_factory.mktemp("ready")
    proxy.hold = threading.Event()  # as for processes: held until all four are at the lock
    with ThreadPoolExecutor(4) as pool:
        try:
            jobs = [
                pool.submit(shared._fetch, obj.url(proxy.url), obj.digest, ".nwb") for _ in range(4)
            ]
            wait_until(
                lambda: len(list(shared.ready.iterdir())) == 4 and proxy.requests[obj.path] >= 1,
                alive=lambda: not any(job.done() for job in jobs),
            )
        finally:
            proxy.hold.set()
        results = [job.result() for job in jobs]
    assert {path for path, _ in results} == {cache.path(obj.digest)}
    assert sorted(received or 0 for _, received in results) == [0, 0, 0, len(obj.data)]
    assert proxy.requests[obj.path] == 1


def test_wrong_hash_is_retried_then_a_one_line_error_and_nothing_cached(release, proxy, cache):
    obj = release.objects[6]
    wrong = hashlib.blake2b(b"not this file").hexdigest()
    with pytest.raises(VboError) as error:
        cache.fetch(obj.url(proxy.url), wrong)
    message = one_line(error)
    assert obj.key in message and wrong in message and obj.digest in message
    assert proxy.requests[obj.path] == 2
    assert [p.parent.name for p in files_under(cache.root)] == ["locks"]


def test_verify_finds_a_flipped_bit_and_repair_mends_it(release, cache):
    good, bad = release.objects[7], release.objects[8]
    for obj in (good, bad):
        cache.fetch(obj.url(release.endpoint), obj.digest)
    damaged = cache.path(bad.digest)
    os.chmod(damaged, 0o644)
    with open(damaged, "r+b") as f:
        f.seek(len(bad.data) // 3)
        byte = f.read(1)[0]
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte ^ 0x10]))
    stray = cache.root / "blake2b" / "notes.txt"
    stray.write_text("mine")
    link = damaged.parent / ("0" * 128 + ".nwb")
    link.symlink_to(damaged)
    report = verify(cache)
    assert report.ok == [cache.path(good.digest)] and report.damaged == [damaged]
    assert sorted(report.foreign) == sorted([stray, link]) and report.repaired == []
    report = verify(cache, {bad.digest: bad.url(release.endpoint)}, repair=True)
    assert report.repaired == [damaged] and hash_file(damaged) == bad.digest
    assert verify(cache).damaged == [] and stray.exists()  # foreign files are never touched


def test_adopt_takes_known_files_without_any_request(release, cache, tmp_path_factory, monkeypatch):
    a, b, absent = release.objects[9], release.objects[10], release.objects[11]
    sdk = tmp_path_factory.mktemp("allensdk")
    old = sdk / "visual-behavior-ophys-1.0.1" / "behavior_sessions"
    new = sdk / "visual-behavior-ophys-1.1.0" / "behavior_sessions"
    for folder in (old, new):
        folder.mkdir(parents=True)
    (old / "behavior_session_9.nwb").write_bytes(a.data)
    (new / "behavior_session_9.nwb").symlink_to(old / "behavior_session_9.nwb")
    (new / "behavior_session_10.nwb").write_bytes(b.data)
    (new / "behavior_session_99.nwb").write_bytes(b"unknown content")
    (new / "behavior_session_table.csv").write_text("a,b\n1,2\n")

    def no_network(*args, **kwargs):
        raise AssertionError("adopt must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    known = {o.digest: ".nwb" for o in (a, b, absent)}
    report = adopt(cache, sdk, known)
    assert sorted(p.name for p in report.adopted) == ["behavior_session_10.nwb"] + [
        "behavior_session_9.nwb"
    ]
    assert [p.name for p in report.unknown] == ["behavior_session_99.nwb"]
    assert cache.has(a.digest) and cache.has(b.digest) and not cache.has(absent.digest)
    assert hash_file(cache.path(a.digest)) == a.digest
    assert (old / "behavior_session_9.nwb").read_bytes() == a.data  # the user's files stay
    assert (new / "behavior_session_9.nwb").is_symlink()
    assert adopt(cache, sdk, known).adopted == []


def test_404_is_final_and_one_line(release, proxy, cache):
    url = f"{proxy.url}/{BUCKET}/{PREFIX}behavior_session_missing.nwb"
    with pytest.raises(VboError) as error:
        cache.fetch(url, release.objects[0].digest)
    assert "404" in one_line(error) and "behavior_session_missing.nwb" in str(error.value)
    assert proxy.requests[f"/{BUCKET}/{PREFIX}behavior_session_missing.nwb"] == 1
    assert not cache.has(release.objects[0].digest)


def test_unreachable_server_fails_after_retries(release, cache):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{BUCKET}/{release.objects[0].key}"
    with pytest.raises(VboError) as error:
        cache.fetch(url, release.objects[0].digest)
    assert "attempts" in one_line(error) and f"127.0.0.1:{port}" in str(error.value)


@pytest.mark.parametrize(
    ("digest", "suffix"),
    [("../" * 3 + "etc", ".nwb"), ("A" * 128, ".nwb"), ("a" * 128, "/../x"), ("a" * 128, "")],
)
def test_names_that_could_escape_the_root_are_refused(cache, digest, suffix):
    with pytest.raises(VboError) as error:
        cache.fetch("http://127.0.0.1:9/x", digest, suffix)
    one_line(error)
    assert not cache.root.exists()


def test_cache_dir_prefers_environment_then_recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("VBO_CACHE_DIR", str(tmp_path / "env"))
    assert cache_dir(tmp_path / "recorded") == tmp_path / "env"
    monkeypatch.delenv("VBO_CACHE_DIR")
    assert cache_dir(tmp_path / "recorded") == tmp_path / "recorded"
    assert "intake-vbo" in str(cache_dir())

"""The portable file operations under an emulation of Windows' rules (tests/portable.py).

The emulation is checked first (it must really refuse, or the rest proves nothing), then
:class:`~intake_vbo.base.fileops.RandomAccess` without ``os.pwrite``/``os.pread``, then a
download in parts, a streamed read and ``verify --repair`` end to end. conftest's
``PORTABLE_TWICE`` runs chosen transfer tests a second time under the same emulation.
"""

from __future__ import annotations

import errno
import importlib
import io
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import PORTABLE_TWICE, upload
from faultproxy import FaultProxy
from portable import FAST_CALLS, emulated, windows_like

from intake_vbo.base import fileops, settings
from intake_vbo.transfer.cache import Cache
from intake_vbo.transfer.download import hash_file
from intake_vbo.transfer.journal import Journal
from intake_vbo.transfer.opener import open_url
from intake_vbo.transfer.parts import Parallel
from intake_vbo.transfer.upkeep import verify

BUCKET = "intake-vbo-portable-tests"
PART = 256 << 10
SETTINGS = Parallel(connections=4, part_size=PART, threshold=512 << 10)
BLOCK = 16 << 10
REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("cache_worker.py")


def read_only_file(path: Path, data: bytes = b"kept") -> Path:
    path.write_bytes(data)
    path.chmod(0o444)
    return path


# -- the emulation refuses what Windows refuses --------------------------------------------


def test_the_emulation_takes_the_fast_calls_away_and_gives_them_back(monkeypatch):
    monkeypatch.delenv("VBO_PORTABLE", raising=False)
    present = {name for name in FAST_CALLS if hasattr(os, name)}
    assert present == set(FAST_CALLS)  # Linux has them all: the emulation has work to do
    with emulated():
        assert not any(hasattr(os, name) for name in FAST_CALLS)
        assert settings.portable()
    assert all(hasattr(os, name) for name in FAST_CALLS) and not settings.portable()


def test_the_emulation_refuses_to_unlink_or_replace_a_read_only_file(tmp_path):
    target = read_only_file(tmp_path / "target")
    other = tmp_path / "other"
    other.write_bytes(b"new")
    with emulated() as seen:
        for remove in (os.unlink, os.remove, Path.unlink):
            with pytest.raises(PermissionError):
                remove(target)
        for move in (os.replace, Path.replace):
            with pytest.raises(PermissionError):
                move(other, target)
        with pytest.raises(FileExistsError):  # Windows' rename never overwrites
            other.rename(target)
        assert target.read_bytes() == b"kept" and other.read_bytes() == b"new"
        assert seen.refusals("unlink") == [str(target)] * 3
        assert seen.refusals("replace") == [str(target)] * 2
        writable = tmp_path / "writable"
        writable.write_bytes(b"x")
        os.replace(other, writable)  # a writable destination is replaced ...
        assert writable.read_bytes() == b"new"
        writable.unlink()  # ... and a writable file removed
        assert not writable.exists()
    target.unlink()  # the real call again, once the emulation is over
    assert not target.exists()


def test_fileops_removes_and_replaces_read_only_files_under_the_emulation(tmp_path):
    target, gone = read_only_file(tmp_path / "target"), read_only_file(tmp_path / "gone")
    new = tmp_path / "new"
    new.write_bytes(b"new")
    with emulated() as seen:
        fileops.replace(new, target)
        fileops.remove(gone)
        fileops.remove(tmp_path / "never-was")  # missing_ok
        with pytest.raises(FileNotFoundError):
            fileops.remove(tmp_path / "never-was", missing_ok=False)
    assert target.read_bytes() == b"new" and not gone.exists() and not new.exists()
    assert seen.refusals("replace") == [str(target)] and seen.refusals("unlink") == [str(gone)]


def test_the_emulation_refuses_fsync_on_a_read_only_descriptor(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    reading = os.open(path, os.O_RDONLY)
    try:
        os.fsync(reading)  # Linux flushes it ...
        with emulated() as seen:
            with pytest.raises(OSError) as error:  # ... Windows does not
                os.fsync(reading)
            assert error.value.errno == errno.EBADF
            with pytest.raises(OSError):
                fileops.datasync(reading)  # fsync in place of the missing fdatasync
            assert len(seen.refusals("fsync")) == 2 and seen.fsyncs == 0
            writing = fileops.open_fd(path, os.O_WRONLY)
            try:
                fileops.datasync(writing)
            finally:
                os.close(writing)
            assert seen.fsyncs == 1
    finally:
        os.close(reading)


@pytest.mark.parametrize("file_ops", ["portable"], indirect=True)
def test_conftest_runs_a_portable_test_under_the_emulation(file_ops, tmp_path):
    assert file_ops == "portable" and settings.portable()
    assert not any(hasattr(os, name) for name in FAST_CALLS)
    with pytest.raises(PermissionError):
        read_only_file(tmp_path / "f").unlink()


def test_every_test_run_twice_exists():
    for module, names in PORTABLE_TWICE.items():
        tests = importlib.import_module(module)
        missing = [name for name in names if not callable(getattr(tests, name, None))]
        assert not missing, f"conftest.PORTABLE_TWICE names tests {module} lacks: {missing}"


# -- positioned reads and writes without pwrite/pread ------------------------------------


def test_random_access_from_many_threads_without_pwrite_or_pread(tmp_path, monkeypatch):
    windows_like(monkeypatch)
    real_lseek, seeks = os.lseek, []

    def lseek(fd, pos, how):  # a thread switch right after every seek: a race would show
        seeks.append(pos)
        where = real_lseek(fd, pos, how)
        time.sleep(0.0001)
        return where

    monkeypatch.setattr(os, "lseek", lseek)
    threads, per_thread, size = 8, 32, 4096
    rng = random.Random(3)
    data = rng.randbytes(threads * per_thread * size)
    offsets = list(range(0, len(data), size))
    rng.shuffle(offsets)
    file = fileops.RandomAccess(tmp_path / "f")
    file.preallocate(0, len(data))
    assert os.fstat(file.fd).st_size == len(data)

    def work(mine: list[int]) -> list[int]:
        wrong = []
        for offset in mine:
            file.write_at(data[offset : offset + size], offset)
            if file.read_at(size, offset) != data[offset : offset + size]:
                wrong.append(offset)
        return wrong

    try:
        with ThreadPoolExecutor(threads) as pool:
            wrong = [w for ws in pool.map(work, [offsets[i::threads] for i in range(threads)])
                     for w in ws]  # fmt: skip
        file.datasync()
        assert wrong == []
        assert file.read_at(len(data) + 10, 0) == data  # fewer bytes only at the end
    finally:
        file.close()
    assert (tmp_path / "f").read_bytes() == data
    assert len(seeks) == 2 * len(offsets) + 1  # every write and read took the portable path


def test_the_fast_calls_are_left_alone_when_portable_is_set(tmp_path, monkeypatch):
    used, real = [], {name: getattr(os, name) for name in FAST_CALLS}

    def spy(name):
        def call(*args):
            used.append(name)
            return real[name](*args)

        return call

    for name in FAST_CALLS:
        monkeypatch.setattr(os, name, spy(name))
    monkeypatch.setenv("VBO_PORTABLE", "1")
    file = fileops.RandomAccess(tmp_path / "f")
    try:
        file.preallocate(0, 10)
        file.write_at(b"abc", 4)
        assert file.read_at(3, 4) == b"abc" and os.fstat(file.fd).st_size == 10
        file.datasync()
        assert used == []
        monkeypatch.delenv("VBO_PORTABLE")  # the fast path: the same calls now reach os's
        file.write_at(b"abc", 4)
        file.read_at(3, 4)
        file.datasync()
        file.preallocate(0, 20)
        assert used == ["pwrite", "pread", "fdatasync", "posix_fallocate"]
    finally:
        file.close()


# -- download in parts, streamed read, verify --repair ------------------------------------


@pytest.fixture(scope="module")
def objects(s3_endpoint):
    rng = random.Random(20240901)
    out = io.BytesIO()
    with h5py.File(out, "w") as f:
        f.create_dataset("x", data=np.arange(60_000, dtype="f8"), chunks=(4096,))
        f.create_dataset("y", data=np.frombuffer(rng.randbytes(50_000), dtype="u1"))
    return {
        "big": upload(s3_endpoint, BUCKET, "big.nwb", rng.randbytes(6 * PART + 1000)),
        "small": upload(s3_endpoint, BUCKET, "small.nwb", rng.randbytes(100_000)),
        "h5": upload(s3_endpoint, BUCKET, "f.nwb", out.getvalue()),
    }


@pytest.fixture
def proxy(s3_endpoint, monkeypatch):
    monkeypatch.setenv("VBO_BACKOFF_BASE", "0.01")
    with FaultProxy(s3_endpoint) as proxy:
        yield proxy


def test_a_file_over_the_parallel_threshold_under_the_emulation(objects, proxy, tmp_path,
                                                                monkeypatch):  # fmt: skip
    seen = windows_like(monkeypatch)
    writers, real_write_at = set(), fileops.RandomAccess.write_at

    def write_at(self, data, offset):
        writers.add(threading.get_ident())
        real_write_at(self, data, offset)

    monkeypatch.setattr(fileops.RandomAccess, "write_at", write_at)
    obj, cache = objects["big"], Cache(tmp_path / "cache", parallel=SETTINGS)
    path = cache.fetch(obj.url(proxy.url), obj.digest)
    assert path.read_bytes() == obj.data and stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    edges = [*range(0, len(obj.data), PART), len(obj.data)]
    assert sorted(r.range for r in proxy.log) == sorted(
        f"bytes={lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:], strict=False)
    )  # seven parts, each once
    assert len(writers) >= 2  # parts written at their offsets from several threads
    assert seen.fsyncs >= 2 and seen.refused == []  # synced, never on a read-only descriptor
    assert not list((cache.root / "partial").iterdir())


def test_a_streamed_read_through_h5py_under_the_emulation(objects, proxy, tmp_path, monkeypatch):
    seen = windows_like(monkeypatch)
    obj, cache = objects["h5"], Cache(tmp_path)
    stream = open_url(obj.url(proxy.url), obj.digest, cache, block_size=BLOCK, near=0)
    with h5py.File(stream, "r") as f:
        np.testing.assert_array_equal(f["x"][20_000:30_000], np.arange(20_000, 30_000))
    blocks = len(list(tmp_path.glob("blocks/*/*.blk")))
    assert 0 < blocks < -(-len(obj.data) // BLOCK)  # some blocks, not the whole file
    stream.seek(0)
    assert stream.read() == obj.data
    assert stream.promoted == cache.path(obj.digest) and hash_file(stream.promoted) == obj.digest
    assert stat.S_IMODE(stream.promoted.stat().st_mode) & 0o222 == 0
    assert not list(tmp_path.glob("blocks/*/*.blk"))  # the blocks made way for the file
    assert seen.fsyncs >= 1 and seen.refused == []
    requests = proxy.requests[f"/{BUCKET}/{obj.key}"]
    with h5py.File(open_url(obj.url(proxy.url), obj.digest, cache), "r") as f:  # the local copy
        assert f["y"].shape == (50_000,)
    assert proxy.requests[f"/{BUCKET}/{obj.key}"] == requests


def test_verify_repair_mends_a_damaged_read_only_file_under_the_emulation(objects, tmp_path,
                                                                          s3_endpoint,
                                                                          monkeypatch):  # fmt: skip
    seen = windows_like(monkeypatch)
    cache = Cache(tmp_path / "cache", parallel=SETTINGS)
    good, bad = objects["small"], objects["big"]
    for obj in (good, bad):
        cache.fetch(obj.url(s3_endpoint), obj.digest)
    damaged = cache.path(bad.digest)
    damaged.chmod(0o644)  # bit rot, say: the file stays read-only
    with open(damaged, "r+b") as f:
        f.seek(3 * PART + 5)
        f.write(bytes([bad.data[3 * PART + 5] ^ 0x04]))
    damaged.chmod(0o444)
    assert verify(cache).damaged == [damaged]
    report = verify(cache, {bad.digest: bad.url(s3_endpoint)}, repair=True)
    assert report.repaired == [damaged] and report.failed == []
    assert seen.refusals("unlink") == [str(damaged)]  # refused once, as Windows would; mended
    assert hash_file(damaged) == bad.digest and stat.S_IMODE(damaged.stat().st_mode) == 0o444
    again = verify(cache)
    assert again.damaged == [] and sorted(again.ok) == sorted([damaged, cache.path(good.digest)])


def test_a_download_in_parts_killed_before_its_rename_resumes_under_the_emulation(
    objects, proxy, tmp_path, monkeypatch
):
    seen = windows_like(monkeypatch)
    obj, cache = objects["big"], Cache(tmp_path / "cache", parallel=SETTINGS)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "VBO_CRASH_AT": "download:before-rename",
        "VBO_CONNECTIONS": "4",
        "VBO_PART_SIZE": "256K",
        "VBO_PARALLEL_THRESHOLD": "512K",
    }
    assert env["VBO_PORTABLE"] == "1"  # the child takes the portable path too (on Linux's rules)
    child = subprocess.run([sys.executable, str(WORKER), str(cache.root), obj.url(proxy.url),
                            obj.digest], env=env, capture_output=True, timeout=60)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    plan, done = Journal(cache.journal(obj.digest).path).load()
    assert plan.size == len(obj.data) and done == set(range(len(plan.spans())))
    assert not cache.has(obj.digest)
    proxy.reset()
    path = cache.fetch(obj.url(proxy.url), obj.digest)  # every part read back and hashed
    assert path.read_bytes() == obj.data and proxy.log == []
    assert not list((cache.root / "partial").iterdir()) and seen.refused == []

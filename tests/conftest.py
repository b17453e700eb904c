"""Shared fixtures: no network but loopback, and a sample release on a loopback S3 server."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def loopback_only():
    """Refuse, in this process, every connection that is not to 127.0.0.0/8 or ::1."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise ConnectionRefusedError(f"test tried to reach {address!r}: loopback only")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    yield
    socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex


# The sample release the tests serve: every table at 2% of real scale, three versions.
SCALE = 0.02


@pytest.fixture(scope="session")
def sample_release() -> Path:
    """A generated release on disk, cached in .sample-cache between runs."""
    from intake_vbo.sample.release import generate_release

    return generate_release(REPO / ".sample-cache" / f"scale-{SCALE}", scale=SCALE)


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on a free loopback port, for the whole session."""
    from intake_vbo.sample.s3 import start_server

    server, endpoint = start_server()
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def bucket_url(s3_endpoint, sample_release) -> str:
    """Every sample version published, in order, to the shared (read-only) bucket."""
    from intake_vbo.sample.s3 import publish

    return publish(sample_release, s3_endpoint)


@pytest.fixture
def new_bucket(s3_endpoint, sample_release, request):
    """Factory: publish chosen versions into a bucket of this test's own; returns its URL."""
    from intake_vbo.sample.s3 import publish

    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50]

    def make(versions=None) -> str:
        return publish(sample_release, s3_endpoint, versions=versions, bucket=name.strip("-"))

    return make


@pytest.fixture(scope="session")
def catalog_dir(bucket_url, tmp_path_factory) -> Path:
    """A catalog of every sample version, built once; tests must not modify it."""
    from intake_vbo.catalog.build import build

    out = tmp_path_factory.mktemp("catalog")
    build(out, bucket_url, "all", cache_dir=str(tmp_path_factory.mktemp("cache")))
    return out


def read_only(path: Path):
    """Make ``path`` read-only for real: a read-only bind mount when root, else chmod a-w.

    Returns the function that undoes it.
    """
    import os
    import subprocess

    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path), str(path)], check=True)
        return lambda: subprocess.run(["umount", str(path)], check=True)
    for where in [path, *path.rglob("*")]:
        if not where.is_symlink():
            where.chmod(where.stat().st_mode & ~0o222)
    return lambda: None


@pytest.fixture(scope="session")
def bucket_copy(sample_release, tmp_path_factory):
    """The sample release in the bucket's layout on disk, read-only (a data asset)."""
    from intake_vbo.sample.copies import write_bucket_copy

    path = write_bucket_copy(sample_release, tmp_path_factory.mktemp("copies") / "bucket")
    undo = read_only(path)
    yield path
    undo()


@pytest.fixture(scope="session")
def allensdk_copy(sample_release, tmp_path_factory):
    """The sample release as an AllenSDK download cache, read-only; 1.0.0 last used."""
    from intake_vbo.sample.copies import write_allensdk_copy

    where = tmp_path_factory.mktemp("copies") / "allensdk"
    path = write_allensdk_copy(sample_release, where, last_used="1.0.0")
    undo = read_only(path)
    yield path
    undo()


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (files, folders, links) with its size and mtime."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted([root, *root.rglob("*")])
    }


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root with its bytes and mtime, to prove nothing changed.

    The build lock file is left out: taking a lock may touch it, and it holds nothing.
    """
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".build.lock"
    }


@dataclass(frozen=True)
class Uploaded:
    """An object put in a bucket of the loopback server: its bytes, key and version."""

    bucket: str
    key: str
    version_id: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.data).hexdigest()

    @property
    def path(self) -> str:  # what the proxy counts by
        return f"/{self.bucket}/{self.key}"

    def url(self, base: str) -> str:
        return f"{base}{self.path}?versionId={self.version_id}"


def upload(endpoint_url: str, bucket: str, key: str, data: bytes) -> Uploaded:
    """Put ``data`` under ``key`` (the bucket made versioned and public first, if new)."""
    from intake_vbo.sample.s3 import create_bucket, put_object

    create_bucket(endpoint_url, bucket)
    return Uploaded(bucket, key, put_object(endpoint_url, key, data, bucket=bucket), data)


# The transfer tests run a second time with the portable file operations forced, under an
# emulation of Windows' rules (tests/portable.py): a download in one piece and in parts,
# resumed after a kill, a streamed read and its promotion, and verify --repair. Each of these
# runs as ``name[posix...]`` and ``name[portable...]``. A subset, to keep `make quick` short:
# tests of POSIX facts (modes under a umask, flock across processes) stay single, as do those
# that touch no file, and test_parallel's kill-and-resume (its child process sees only
# VBO_PORTABLE, not the emulation); test_portable.py resumes a killed download in parts
# under the emulation instead, and checks that every name here exists.
PORTABLE_TWICE = {
    "test_cache": (
        "test_truncated_body_resumes_and_a_200_to_a_range_starts_over",
        "test_a_download_killed_at_each_step_leaves_no_damage_and_a_rerun_fetches_the_rest",
        "test_threads_fetching_one_file_transfer_it_once",
        "test_verify_finds_a_flipped_bit_and_repair_mends_it",
    ),
    "test_parallel": (
        "test_a_large_file_comes_in_parts_over_several_connections_at_once",
        "test_parts_through_injected_faults_arrive_verified",
        "test_a_first_response_cut_short_hands_its_part_to_the_others",
        "test_a_part_that_keeps_failing_fails_the_file_and_a_rerun_keeps_the_rest",
    ),
    "test_ranges": (
        "test_open_experiment_takes_a_url",
        "test_a_complete_stream_is_verified_and_promoted",
        "test_killed_before_promotion_promotes_on_the_next_open",
        "test_verify_finds_a_flipped_bit_in_a_block",
        "test_the_cap_evicts_least_recently_used_blocks",
    ),
}


def pytest_generate_tests(metafunc):
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if metafunc.function.__name__ in PORTABLE_TWICE.get(module, ()):
        metafunc.parametrize("file_ops", ["posix", "portable"], indirect=True)


@pytest.fixture(autouse=True)
def file_ops(request) -> str:
    """The file operations a test runs with: ``posix`` (this machine's fast path), or
    ``portable``: forced, under the emulation of Windows (see PORTABLE_TWICE)."""
    which = getattr(request, "param", "posix")
    if which == "portable":
        from portable import windows_like

        windows_like(request.getfixturevalue("monkeypatch"))
    return which

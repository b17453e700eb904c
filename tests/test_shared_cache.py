"""A lab's cache shared between Unix users: two real uids of one group, umask 002.

Each operation runs in a child process as alice (61001) or bob (61002), each with a
primary group of their own and both in the lab's group 61000, with umask 002, on a
cache directory an administrator made ``root:61000``, mode 2775 (setgid: what is
created below belongs to the lab's group); the files one of them leaves are
then used, resumed, replaced, evicted or repaired by the other, against the moto server
of conftest (behind the fault proxy, which counts what each one fetched). The last
tests have alice work with umask 022, so what she creates is not writable by the group:
every refusal bob meets is one line naming the directory, the owner and the mode of
what refused. The two-user tests run
only as root (a root process may start children as any uid: no accounts needed); the
last ones, of the refusal message itself, run as anyone.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from as_user import Killed, User, interpreter, is_root, run_as
from conftest import Uploaded, upload
from faultproxy import FaultProxy
from shared import FIXTURES
from shared_steps import (
    adopt_dir,
    build_catalog,
    command,
    digest_of,
    evict,
    fetch,
    read_catalog,
    stream_max_projection,
    stream_read,
    verify_repair,
)

from intake_vbo.base import fileops
from intake_vbo.base.errors import VboError

BUCKET = "t-shared-cache"
GROUP, ALICE, BOB = 61000, 61001, 61002
NOT_SHARED = (
    r"{what} {root} is not writable by group 61000: {path} is owned by 61001:61000, "
    r"mode {mode} \(set umask 002 and chmod g\+ws\)"
)
PARTS = {"VBO_CONNECTIONS": "4", "VBO_PART_SIZE": "256K", "VBO_PARALLEL_THRESHOLD": "512K"}


@dataclass
class Lab:
    """A lab's shared disk: the cache, a place for catalogs, and its two users."""

    base: Path
    cache: Path
    alice: User
    bob: User

    def as_(self, user: User, **env) -> User:
        return dataclasses.replace(user, env={**user.env, **env})


@pytest.fixture(scope="module")
def objects(s3_endpoint) -> dict[str, Uploaded]:
    rng = random.Random(13)
    nwb = FIXTURES / "behavior_ophys_experiment_900000013.nwb"
    return {
        "experiment": upload(s3_endpoint, BUCKET, "exp/e.nwb", nwb.read_bytes()),
        "big": upload(s3_endpoint, BUCKET, "big/b.nwb", rng.randbytes(3 * (1 << 20) + 1000)),
        "bytes": upload(s3_endpoint, BUCKET, "bytes/b.bin", rng.randbytes(200_000)),
        "small": upload(s3_endpoint, BUCKET, "small/s.nwb", rng.randbytes(100_000)),
        "other": upload(s3_endpoint, BUCKET, "small/o.nwb", rng.randbytes(90_000)),
    }


@pytest.fixture
def proxy(s3_endpoint):
    with FaultProxy(s3_endpoint) as p:
        yield p


def shared_dir(path: Path, mode: int = 0o2775) -> Path:
    """A directory as a lab's administrator makes it: root's, the lab's group, setgid."""
    path.mkdir()
    os.chown(path, 0, GROUP)
    os.chmod(path, mode)
    return path


@pytest.fixture
def lab() -> Lab:
    if not is_root() or interpreter() is None:
        pytest.skip("needs root, to run children as other uids (and a Python they can run)")
    base = Path(tempfile.mkdtemp(prefix="vbo-lab-", dir="/tmp"))  # tmp_path is root's 0700
    os.chmod(base, 0o755)
    users = {}
    for name, uid in (("alice", ALICE), ("bob", BOB)):
        home = base / name
        home.mkdir(mode=0o700)
        os.chown(home, uid, GROUP)
        env = {"HOME": str(home), "VBO_BACKOFF_BASE": "0.001", "VBO_STREAM_CACHE_MAX": ""}
        users[name] = User(uid, uid, (GROUP,), env=env)
    yield Lab(base, shared_dir(base / "cache"), **users)
    shutil.rmtree(base)


# -- helpers ----------------------------------------------------------------------------


def owner(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


def damage(path: Path) -> None:
    """Flip a bit in the middle of a file (as root: whoever owns it)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    path.write_bytes(bytes(data))


def blocks_of(root: Path) -> list[Path]:
    return sorted(root.glob("blocks/*/*.blk"))


def partial(root: Path, obj: Uploaded, ending: str = ".part") -> Path:
    return root / "partial" / f"{obj.digest}{ending}"


# -- a shared cache: every operation on the other user's files ----------------------------


def test_a_stream_one_user_began_is_read_by_another(lab, objects, proxy):
    obj = objects["experiment"]
    url = obj.url(proxy.url)
    expected = run_as(lab.alice, stream_max_projection, str(lab.cache), url, obj.digest)
    assert blocks_of(lab.cache) and {owner(p) for p in blocks_of(lab.cache)} == {(ALICE, GROUP)}
    before = proxy.requests[obj.path]
    got = run_as(lab.bob, stream_max_projection, str(lab.cache), url, obj.digest)
    assert (got == expected).all()
    assert proxy.requests[obj.path] == before  # every block bob read was alice's


def test_blocks_of_one_user_are_completed_and_promoted_by_another(lab, objects, proxy):
    obj = objects["bytes"]
    url, root = obj.url(proxy.url), str(lab.cache)
    data, promoted = run_as(lab.alice, stream_read, root, url, obj.digest, 0, 50_000)
    assert data == obj.data[:50_000] and promoted is None
    data, promoted = run_as(lab.bob, stream_read, root, url, obj.digest, 0)
    assert data == obj.data and Path(promoted) == lab.cache / "blake2b" / obj.digest[:2] / (
        f"{obj.digest}.nwb"
    )
    assert owner(Path(promoted)) == (BOB, GROUP) and blocks_of(lab.cache) == []
    assert run_as(lab.alice, digest_of, promoted) == obj.digest
    assert proxy.sent[obj.path] == len(obj.data)  # bob fetched only what alice had not


def test_the_lru_cap_touches_and_evicts_the_other_users_blocks(lab, objects, proxy):
    obj = objects["bytes"]
    url, root = obj.url(proxy.url), str(lab.cache)
    assert run_as(lab.alice, stream_read, root, url, None, 0)[0] == obj.data  # 13 blocks
    time.sleep(0.05)  # bob's use of block 0 comes after alice wrote every block
    assert run_as(lab.bob, stream_read, root, url, None, 0, 100)[0] == obj.data[:100]
    total = sum(p.stat().st_size for p in blocks_of(lab.cache))
    removed = run_as(lab.bob, evict, root, total - 1)
    assert len(removed) == 1 and not removed[0].startswith("0.")  # block 0: used last
    assert run_as(lab.bob, evict, root, 0) and blocks_of(lab.cache) == []


def test_a_download_killed_for_one_user_is_resumed_by_another(lab, objects, proxy):
    obj = objects["big"]
    url, root = obj.url(proxy.url), str(lab.cache)
    one = {"VBO_CONNECTIONS": "1"}
    killed = lab.as_(lab.alice, VBO_CRASH_AT="download:chunk-written", **one)
    assert isinstance(run_as(killed, fetch, root, url, obj.digest), Killed)
    left = partial(lab.cache, obj)
    assert owner(left) == (ALICE, GROUP) and 0 < left.stat().st_size < len(obj.data)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (left.parent, left)}
    assert modes == {left.parent: 0o2775, left: 0o664}  # the group's, and group-writable
    size = left.stat().st_size
    path, received = run_as(lab.as_(lab.bob, **one), fetch, root, url, obj.digest)
    assert received == len(obj.data) - size  # resumed, not restarted
    assert owner(Path(path)) == (BOB, GROUP) and stat.S_IMODE(Path(path).stat().st_mode) == 0o444
    assert run_as(lab.alice, digest_of, path) == obj.digest
    assert list((lab.cache / "partial").iterdir()) == []


def test_a_download_in_parts_killed_for_one_user_is_resumed_by_another(lab, objects, proxy):
    obj = objects["big"]
    url, root = obj.url(proxy.url), str(lab.cache)
    killed = lab.as_(lab.alice, VBO_CRASH_AT="parts:part-written", **PARTS)
    assert isinstance(run_as(killed, fetch, root, url, obj.digest), Killed)
    journal = partial(lab.cache, obj, ".journal")
    assert owner(journal) == (ALICE, GROUP) and owner(partial(lab.cache, obj))[0] == ALICE
    from intake_vbo.transfer.journal import Journal

    plan, done = Journal(journal).load()
    have = sum(hi - lo for i, (lo, hi) in enumerate(plan.spans()) if i in done)
    assert 0 < have < len(obj.data)
    path, received = run_as(lab.as_(lab.bob, **PARTS), fetch, root, url, obj.digest)
    assert received == len(obj.data) - have  # only the parts alice's journal lacked
    assert run_as(lab.alice, digest_of, path) == obj.digest
    assert list((lab.cache / "partial").iterdir()) == []


def test_a_partial_download_the_other_user_cannot_read_is_started_again(lab, objects, proxy):
    obj = objects["small"]
    url, root = obj.url(proxy.url), str(lab.cache)
    for folder in ("locks", "partial"):  # made by others before: alice's would be 0700
        shared_dir(lab.cache / folder)
    private = dataclasses.replace(lab.alice, umask=0o077)  # a private umask: a 0600 partial
    killed = lab.as_(private, VBO_CRASH_AT="download:chunk-written", VBO_CONNECTIONS="1")
    assert isinstance(run_as(killed, fetch, root, url, obj.digest), Killed)
    assert stat.S_IMODE(partial(lab.cache, obj).stat().st_mode) == 0o600
    path, received = run_as(lab.bob, fetch, root, url, obj.digest)
    assert received == len(obj.data) and run_as(lab.bob, digest_of, path) == obj.digest
    assert list((lab.cache / "partial").iterdir()) == []


def test_verify_repair_mends_the_other_users_files_and_blocks(lab, objects, proxy):
    small, obj = objects["small"], objects["bytes"]
    root = str(lab.cache)
    path, _ = run_as(lab.alice, fetch, root, small.url(proxy.url), small.digest)
    assert owner(Path(path)) == (ALICE, GROUP)  # the lab's group, by the setgid directory
    run_as(lab.alice, stream_read, root, obj.url(proxy.url), None, 0, 40_000)
    damage(Path(path))
    blocks = len(blocks_of(lab.cache))
    damage(blocks_of(lab.cache)[0])
    damaged, repaired, failed = run_as(
        lab.bob, verify_repair, root, {small.digest: small.url(proxy.url)}
    )
    assert (damaged, repaired, failed) == (2, 2, [])
    assert owner(Path(path)) == (BOB, GROUP) and run_as(lab.alice, digest_of, path) == small.digest
    assert len(blocks_of(lab.cache)) == blocks - 1  # the damaged one is gone (fetched when read)


def test_adopted_files_are_readable_by_everyone(lab, objects):
    mine, theirs = objects["small"], objects["other"]
    private = lab.base / "alice" / "allensdk"  # alice's own AllenSDK cache, 0700 and 0600
    private.mkdir(mode=0o700)
    (private / "behavior_session_1.nwb").write_bytes(mine.data)
    os.chmod(private / "behavior_session_1.nwb", 0o600)
    group = shared_dir(lab.base / "sdk")  # a lab copy alice made: bob may read, not write
    (group / "behavior_session_2.nwb").write_bytes(theirs.data)
    os.chmod(group / "behavior_session_2.nwb", 0o644)
    for path in (private, *private.iterdir(), group / "behavior_session_2.nwb"):
        os.chown(path, ALICE, GROUP)
    known = {mine.digest: ".nwb", theirs.digest: ".nwb"}
    assert run_as(lab.alice, adopt_dir, str(lab.cache), str(private), known) == (1, 0)
    assert run_as(lab.bob, adopt_dir, str(lab.cache), str(group), known) == (1, 0)
    for obj in (mine, theirs):
        cached = lab.cache / "blake2b" / obj.digest[:2] / f"{obj.digest}.nwb"
        for user in (lab.alice, lab.bob):
            assert run_as(user, digest_of, str(cached)) == obj.digest


def test_a_build_is_rebuilt_by_another_data_manager_and_read_by_everyone(lab, bucket_url):
    catalog = shared_dir(lab.base / "catalog")
    out, cache = str(catalog), str(lab.cache)
    assert run_as(lab.alice, build_catalog, out, bucket_url, "1.0.0", cache) == ["1.0.0"]
    assert run_as(lab.bob, build_catalog, out, bucket_url, "all", cache) == ["0.3.0", "1.1.0"]
    assert owner(catalog / ".build.lock")[0] == ALICE  # taken by bob too
    seen = {user.uid: run_as(user, read_catalog, out) for user in (lab.alice, lab.bob)}
    versions, rows, digest = seen[ALICE]
    assert versions == ["latest", "v0_3_0", "v1_0_0", "v1_1_0"] and rows > 0
    assert seen[BOB] == seen[ALICE]  # the second reader used the first one's download


# -- a directory that is not shared: one line naming the problem --------------------------


def not_shared(what: str, root: Path, path, mode: str = "drwxr-sr-x") -> str:
    """The refusal's pattern (``path`` a Path, or a pattern)."""
    where = re.escape(str(path)) if isinstance(path, Path) else path
    return NOT_SHARED.format(what=what, root=re.escape(str(root)), path=where, mode=mode)


def files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_cache_not_shared_is_a_one_line_error_naming_the_problem(lab, objects, proxy):
    alice = dataclasses.replace(lab.alice, umask=0o022)  # without the lab's umask
    root = shared_dir(lab.base / "cache022")
    small, obj, other = objects["small"], objects["bytes"], objects["other"]
    path, _ = run_as(alice, fetch, str(root), small.url(proxy.url), small.digest)
    run_as(alice, stream_read, str(root), obj.url(proxy.url), obj.digest, 0, 20_000)
    before = files(root)
    sdk = shared_dir(lab.base / "sdk")
    (sdk / "behavior_session_3.nwb").write_bytes(other.data)
    entry = root / "blocks" / f"h-{obj.digest[:40]}"
    cases = [  # what refuses bob: where his step must create a file of its own
        (root / "locks", fetch, other.url(proxy.url), other.digest),
        (entry, stream_read, obj.url(proxy.url), obj.digest, 0),
        (root / "locks", adopt_dir, str(sdk), {other.digest: ".nwb"}),
    ]
    for where, func, *args in cases:
        with pytest.raises(VboError) as error:
            run_as(lab.bob, func, str(root), *args)
        assert re.fullmatch(not_shared("cache", root, where), str(error.value)), error.value
    damage(Path(path))
    before[Path(path)] = Path(path).read_bytes()
    with pytest.raises(VboError) as error:
        run_as(lab.bob, verify_repair, str(root), {small.digest: small.url(proxy.url)})
    assert re.fullmatch(not_shared("cache", root, Path(path).parent), str(error.value))
    assert files(root) == before  # nothing lost


def test_a_catalog_not_shared_is_a_one_line_error_naming_the_problem(lab, bucket_url):
    alice = dataclasses.replace(lab.alice, umask=0o022)
    out = shared_dir(lab.base / "catalog022")
    run_as(alice, build_catalog, str(out), bucket_url, "1.0.0", str(lab.cache))
    before = files(out)
    code, err = run_as(lab.bob, command, "build", "--out", str(out), "--bucket-url", bucket_url)
    pattern = not_shared("catalog", out, r"\S+", r"\S+")
    assert code == 2 and re.fullmatch(f"intake-vbo: error: {pattern}\n", err), err
    assert {p: d for p, d in files(out).items() if ".staging" not in p.parts} == before
    assert run_as(lab.bob, read_catalog, str(out))[0] == ["latest", "v1_0_0"]  # reads still work


# -- the refusal itself, as any user ------------------------------------------------------


def test_a_refusal_names_what_refused_its_owner_and_mode(tmp_path):
    import grp
    import pwd

    path = tmp_path / "locks" / "x.lock"
    path.parent.mkdir()
    path.write_bytes(b"")
    os.chmod(path, 0o444)
    info = path.stat()
    who, group = pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name
    with pytest.raises(VboError) as error, fileops.shared(tmp_path):
        raise PermissionError(13, "Permission denied", str(path))
    assert str(error.value) == (
        f"cache {tmp_path} is not writable by group {group}: {path} is owned by "
        f"{who}:{group}, mode -r--r--r-- (set umask 002 and chmod g+ws)"
    )


def test_a_refusal_outside_the_shared_directory_passes_unchanged(tmp_path):
    with pytest.raises(PermissionError), fileops.shared(tmp_path / "cache", "catalog"):
        raise PermissionError(13, "Permission denied", str(tmp_path / "bucket" / "x.csv"))


def test_ones_own_file_is_not_taken_over_and_a_private_one_is_not_hardlinked(tmp_path):
    path = tmp_path / "a.part"
    path.write_bytes(b"abc")
    assert not fileops.take_over(path, tmp_path / "a.take") and path.read_bytes() == b"abc"
    assert not (tmp_path / "a.take").exists()
    old = os.umask(0o002)
    try:
        assert fileops.umask() == 0o002
        os.chmod(path, 0o600)  # a file the lab's users could not read: copied, not linked
        assert not fileops.readable_as_created(path)
        os.chmod(path, 0o644)
        assert fileops.readable_as_created(path)
    finally:
        os.umask(old)

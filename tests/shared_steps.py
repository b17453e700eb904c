"""What the users of tests/test_shared_cache.py do, each step in a process of its own.

Kept apart from the test module so that a child imports only this (and the package),
not pytest and the fixtures: a step starts in a fraction of a second.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 16 << 10  # block size of the streamed reads: the test objects are small


def stream_max_projection(root: str, url: str, digest: str):
    from intake_vbo.nwb import open_experiment
    from intake_vbo.transfer.opener import open_url

    stream = open_url(url, digest, root, block_size=BLOCK, near=0)
    with open_experiment(stream) as exp:
        return exp.max_projection.data


def stream_read(root: str, url: str, digest: str | None, start: int, size: int = -1):
    """Bytes of a streamed file, and where it was promoted to (None: not promoted)."""
    from intake_vbo.transfer.opener import open_url

    stream = open_url(url, digest, root, block_size=BLOCK, near=0)
    stream.seek(start)
    data = stream.read(size)
    promoted = stream.promoted
    stream.close()
    return data, promoted and str(promoted)


def evict(root: str, cap: int) -> list[str]:
    from intake_vbo.transfer.blocks import BlockStore

    return [p.name for p in BlockStore(root, cap=cap).evict()]


def fetch(root: str, url: str, digest: str):
    from intake_vbo.transfer.cache import Cache

    fetched = Cache(root)._fetch(url, digest, ".nwb")
    return str(fetched.path), fetched.received


def verify_repair(root: str, urls: dict):
    from intake_vbo.transfer.cache import Cache
    from intake_vbo.transfer.upkeep import verify

    report = verify(Cache(root), urls, repair=True)
    return len(report.damaged), len(report.repaired), report.failed


def adopt_dir(root: str, path: str, known: dict):
    from intake_vbo.transfer.cache import Cache
    from intake_vbo.transfer.upkeep import adopt

    report = adopt(Cache(root), path, known)
    return len(report.adopted), len(report.present)


def digest_of(path: str) -> str:
    return hashlib.blake2b(Path(path).read_bytes()).hexdigest()


def build_catalog(out: str, bucket: str, versions: str, cache: str) -> list[str]:
    from intake_vbo.catalog.build import build

    return build(out, bucket, versions, cache_dir=cache).built


def read_catalog(out: str):
    """What a reader sees: the versions, a table's rows, one NWB file fetched (its hash)."""
    import intake

    cat = intake.open_catalog(f"{out}/catalog.yaml")
    exps = cat.latest.ophys_experiments.read()
    path = cat.latest.ophys_experiment(ophys_experiment_id=int(exps.index[0])).fetch()
    return sorted(cat), len(exps), digest_of(path)


def command(*argv: str) -> tuple[int, str]:
    """``intake-vbo ARGV...``: its exit status and what it printed on stderr."""
    import contextlib
    import io

    from intake_vbo.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()

"""``cache``: one large NWB-sized object fetched into the cache: throughput and flat memory.

Real experiment files run to 3 GB, so the cache must stream: verify the BLAKE2b while
writing, never hold the body. A child process fetches a random object of ``SIZE`` bytes
from the loopback server into an empty cache; the reference is ``requests`` streaming
the same bytes to nowhere (no hashing, no disk). Both report their peak resident memory.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import BENCH, Row, child_env, last_json, run_timed

SIZE = 256 << 20
KEY = "benchmarks/large_object.nwb"  # outside the project prefix: no manifest lists it
MEMORY_TARGET = 64  # MiB of peak memory, whatever the file's size (a held body: > 256)
MIB = 1 << 20


def run(endpoint_url: str, bucket_url: str, repeat: int) -> list[Row]:
    """Time the cached fetch and the bare stream; report peak memory.

    Parameters
    ----------
    endpoint_url : str
        ``http://127.0.0.1:PORT`` (the object is uploaded there first).
    bucket_url : str
        The loopback bucket URL the object is fetched from.
    repeat : int
        Repetitions per figure (the median is reported).

    Returns
    -------
    list of Row
    """
    from intake_vbo.catalog.release import object_url
    from intake_vbo.sample.s3 import put_object

    body = os.urandom(SIZE)
    digest = hashlib.blake2b(body).hexdigest()
    url = object_url(bucket_url, KEY, put_object(endpoint_url, KEY, body))
    del body
    script = str(BENCH / "fetch_ours.py")
    with tempfile.TemporaryDirectory(prefix="vbo-bench-cache-") as tmp:
        ours = [
            _child([script, "cache", str(Path(tmp) / f"cache-{i}"), url, digest])
            for i in range(repeat)
        ]
    plain = [_child([script, "plain", url]) for _ in range(repeat)]
    assert all(r["bytes"] == SIZE for r in ours + plain)
    mb = SIZE / 1e6
    seconds = statistics.median(r["seconds"] for r in ours)
    reference = statistics.median(r["seconds"] for r in plain)
    return [
        Row(f"cache: fetch a {SIZE // MIB} MiB file", seconds, reference,
            "requests stream, unverified, not stored", faster=False,
            note=f"{mb / seconds:.0f} MB/s verified into the cache; "
                 f"{mb / reference:.0f} MB/s bare, from the same loopback server"),
        Row("cache: peak memory during that fetch", _peak(ours), _peak(plain),
            "requests stream", MEMORY_TARGET, unit="MiB",
            note="VmHWM of the fetching process, interpreter and imports included"),
    ]  # fmt: skip


def _child(args: list[str]) -> dict:
    return last_json(run_timed([sys.executable, *args], child_env())[1])


def _peak(runs: list[dict]) -> float:
    return max(r["peak"] for r in runs) / MIB

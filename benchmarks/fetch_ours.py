"""Child process of ``fetch``, run by the project's Python: an intake-vbo download.

Usage:

- ``fetch_ours.py cache ROOT URL FILE_HASH``: ``Cache(ROOT).fetch`` (streamed,
  BLAKE2b-verified, fsynced, renamed into the cache);
- ``fetch_ours.py plain URL``: ``requests`` streaming the body away, nothing else (the
  reference for the cache's own cost);
- ``fetch_ours.py cli fetch ARGS...``: ``intake-vbo fetch ARGS...``, the console
  script's ``main`` in this process;
- ``fetch_ours.py split fetch ARGS...``: what ``intake-vbo fetch`` does, timed in two
  parts: resolving the ids in the catalog, then ``fetch_many``.

Prints one JSON line last: seconds of the download call (``resolve`` too for
``split``), the exit status, bytes, and the peak resident memory (VmHWM).
"""

import json
import sys
import time

from common import peak_bytes


def cache(root: str, url: str, file_hash: str) -> dict:
    """One file through :meth:`intake_vbo.transfer.cache.Cache.fetch`."""
    from intake_vbo.transfer.cache import Cache

    start = time.perf_counter()
    size = Cache(root).fetch(url, file_hash).stat().st_size
    return {"seconds": time.perf_counter() - start, "status": 0, "bytes": size}


def cli(argv: list[str]) -> dict:
    """The console script, as a user runs it."""
    from intake_vbo.cli import main

    start = time.perf_counter()
    status = main(argv)
    sys.stdout.flush()
    return {"seconds": time.perf_counter() - start, "status": status, "bytes": None}


def split(argv: list[str]) -> dict:
    """``intake-vbo fetch``'s own two steps (:func:`intake_vbo.cli.fetch_plan`, then
    ``fetch_many``), timed apart."""
    from intake_vbo.cli import fetch_plan, parser
    from intake_vbo.transfer.cache import fetch_many

    args = parser().parse_args(argv)
    start = time.perf_counter()
    cache, items = fetch_plan(args)
    resolved = time.perf_counter()
    report = fetch_many(cache, items, workers=args.workers)
    return {"resolve": resolved - start, "seconds": time.perf_counter() - resolved,
            "status": 2 if report.failed else 0, "bytes": report.bytes_transferred}  # fmt: skip


def plain(url: str) -> dict:
    """Stream the body to nowhere: what the network and ``requests`` alone cost."""
    import requests

    start, received = time.perf_counter(), 0
    with requests.get(url, stream=True, timeout=(10, 60)) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
    return {"seconds": time.perf_counter() - start, "status": 0, "bytes": received}


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode in ("cache", "plain"):
        result = {"cache": cache, "plain": plain}[mode](*rest)
    else:
        result = {"cli": cli, "split": split}[mode](rest)
    print(json.dumps({**result, "peak": peak_bytes()}))

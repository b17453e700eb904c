"""Child process: fetch one large object, then report the time and the peak memory.

Usage: ``fetch_large.py cache ROOT URL FILE_HASH`` (through :class:`intake_vbo.cache.Cache`:
verified, resumable, written to disk) or ``fetch_large.py plain URL`` (``requests``
streaming the body away, nothing else: the reference). Prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path


def plain(url: str) -> int:
    """Stream the body to nowhere; return the bytes received."""
    import requests

    received = 0
    with requests.get(url, stream=True, timeout=(10, 60)) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
    return received


def cached(root: str, url: str, file_hash: str) -> int:
    """Fetch into an intake-vbo cache; return the size of the verified file."""
    from intake_vbo.cache import Cache

    return Cache(root).fetch(url, file_hash).stat().st_size


if __name__ == "__main__":
    start = time.perf_counter()
    size = cached(*sys.argv[2:5]) if sys.argv[1] == "cache" else plain(sys.argv[2])
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: the latter keeps the peak of the forking parent across exec
    peak = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) * 1024
    print(json.dumps({"bytes": size, "seconds": seconds, "peak": peak}))

"""Fetch one file into a cache in a process of its own (for the multi-process tests).

Usage: ``python cache_worker.py ROOT URL FILE_HASH``; prints JSON with ``path``,
``received`` (null when someone else fetched the file), ``present`` (whether it
was there before this process asked) and ``maxrss`` (peak memory, bytes).
"""

import json
import sys
from pathlib import Path

from intake_vbo.cache import Cache

if __name__ == "__main__":
    root, url, digest = sys.argv[1:4]
    cache = Cache(root)
    present = cache.has(digest)
    path, received = cache._fetch(url, digest, ".nwb")
    # VmHWM, not ru_maxrss: the latter keeps the peak of the forking parent across exec
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
    maxrss = int(status.split()[0]) * 1024
    print(
        json.dumps({"path": str(path), "received": received, "present": present, "maxrss": maxrss})
    )

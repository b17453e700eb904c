"""Fetch one file into a cache in a process of its own (for the multi-process tests).

Usage: ``python cache_worker.py ROOT URL FILE_HASH [READY_DIR]``; prints JSON with
``path``, ``received`` (null when someone else fetched the file), ``present`` (whether
it was there before this process asked) and ``maxrss`` (peak memory, bytes).

With ``READY_DIR``, the process creates ``READY_DIR/<pid>-<thread>`` when it reaches the file's
lock (it has seen the file missing and is about to take or wait for the lock), so a
test knows every process got that far before it lets the download finish.
"""

import json
import os
import sys
import threading
from pathlib import Path

from intake_vbo.transfer.cache import Cache


class ReportingCache(Cache):
    """The real cache, announcing its arrival at the per-file lock."""

    ready: Path | None = None

    def lock(self, digest: str):
        if self.ready is not None:
            (self.ready / f"{os.getpid()}-{threading.get_ident()}").touch()
        return super().lock(digest)


if __name__ == "__main__":
    root, url, digest = sys.argv[1:4]
    cache = ReportingCache(root)
    cache.ready = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    present = cache.has(digest)
    path, received = cache._fetch(url, digest, ".nwb")
    # VmHWM, not ru_maxrss: the latter keeps the peak of the forking parent across exec
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
    maxrss = int(status.split()[0]) * 1024
    print(
        json.dumps({"path": str(path), "received": received, "present": present, "maxrss": maxrss})
    )

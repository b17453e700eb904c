"""Child process of ``range``: one streamed read of the large experiment, timed after imports.

Usage:

- ``range_child.py ours ROOT URL FILE_HASH NAMES``, by the project's Python:
  ``intake_vbo.transfer.opener.open_url(URL, FILE_HASH, ROOT)``, ``open_experiment``
  on it, then each attribute of the comma-separated ``NAMES``;
- ``range_child.py remfile URL DATASET``, by the remfile venv's Python:
  ``h5py.File(remfile.File(URL))[DATASET][()]``.

Prints one JSON line last: seconds of the imports and of the timed part (open and
reads), the requests and body bytes the reader itself counted (ours only), an MD5 of
the first attribute's array (to check both readers got the same pixels) and the
peak resident memory (VmHWM).
"""

import hashlib
import json
import sys
import time

from common import peak_bytes


def ours(root: str, url: str, file_hash: str, names: str) -> dict:
    """Stream ``names`` of the experiment through intake-vbo's block store at ``root``."""
    start = time.perf_counter()
    from intake_vbo import open_experiment
    from intake_vbo.transfer.opener import open_url

    imported = time.perf_counter()
    stream = open_url(url, file_hash or None, root)
    experiment = open_experiment(stream)
    opened = time.perf_counter()
    values = [getattr(experiment, name) for name in names.split(",")]
    first = values[0].data if hasattr(values[0], "data") else None
    experiment.close()
    done = time.perf_counter()
    remote = getattr(stream, "remote", None)  # None: the verified cache's local file
    return {
        "import": imported - start,
        "open": opened - imported,
        "seconds": done - imported,
        "requests": remote.requests if remote else 0,
        "received": remote.received if remote else 0,
        "md5": _md5(first),
    }


def remfile_read(url: str, dataset: str) -> dict:
    """Read one dataset with remfile 0.1.15 and h5py, their defaults."""
    start = time.perf_counter()
    import h5py
    import remfile

    imported = time.perf_counter()
    with h5py.File(remfile.File(url), "r") as f:
        opened = time.perf_counter()
        data = f[dataset][()]
    done = time.perf_counter()
    return {"import": imported - start, "open": opened - imported,
            "seconds": done - imported, "md5": _md5(data)}  # fmt: skip


def _md5(array) -> str | None:
    if array is None:
        return None
    import numpy as np

    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


if __name__ == "__main__":
    reader, args = sys.argv[1], sys.argv[2:]
    result = ours(*args) if reader == "ours" else remfile_read(*args)
    print(json.dumps({**result, "peak": peak_bytes()}))

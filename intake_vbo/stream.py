"""One download into a partial file: resumed with Range, hashed beside, written behind.

The cache (:mod:`intake_vbo.cache`) decides what to download and where it may land;
this module moves the bytes. BLAKE2b runs in a thread of its own fed by a bounded
queue (hashlib releases the GIL, so hashing overlaps the transfer and memory stays
flat), and background ``fdatasync`` calls start the disk's writeback while the
transfer goes on, so that the final fsync before the rename is short.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
from contextlib import contextmanager
from pathlib import Path

from .crash import crash_point
from .errors import VboError
from .http import TIMEOUT, Retry, check, session

CHUNK = 1 << 20  # bytes per read and write: big for throughput, small to resume
QUEUE_CHUNKS = 8  # chunks waiting for the hashing thread: bounds memory
WRITE_BEHIND = 32 << 20  # bytes between background fdatasyncs of a download
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# macOS has no fdatasync; fsync does the same job there (metadata too).
_datasync = getattr(os, "fdatasync", os.fsync)


def hash_file(path: str | os.PathLike) -> str:
    """The BLAKE2b hex digest of a file's bytes, as in a manifest's ``file_hash``."""
    return read_digest(path)[0].hexdigest()


def read_digest(path):
    """The running BLAKE2b of a file, and its size, read with hashing beside the reads."""
    digest, size = hashlib.blake2b(), 0
    with open(path, "rb") as f, Hasher(digest) as hasher:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return digest, size


class Hasher:
    """BLAKE2b in a thread of its own, fed through a bounded queue.

    hashlib releases the GIL on large buffers, so the hash overlaps the transfer
    instead of adding to it; the bounded queue keeps memory flat.
    """

    def __init__(self, digest):
        self._queue: queue.Queue = queue.Queue(QUEUE_CHUNKS)
        self._thread = threading.Thread(target=self._run, args=(digest,), daemon=True)
        self._thread.start()

    def _run(self, digest) -> None:
        while (chunk := self._queue.get()) is not None:
            digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc) -> None:
        self._queue.put(None)  # drain: the digest then covers every chunk given
        self._thread.join()


class WriteBehind:
    """Start the disk's writeback while the download goes on, so the final fsync is short.

    Every ``WRITE_BEHIND`` bytes, a thread of its own calls ``fdatasync`` (which releases
    the GIL) while the transfer continues; at most one runs at a time.
    """

    def __init__(self, file):
        self._file, self._pending = file, 0
        self._busy = threading.Lock()

    def wrote(self, nbytes: int) -> None:
        self._pending += nbytes
        if self._pending >= WRITE_BEHIND and self._busy.acquire(blocking=False):
            self._pending = 0
            self._file.flush()  # Python's buffer to the OS, then the OS's to the disk
            threading.Thread(target=self._sync, daemon=True).start()

    def _sync(self) -> None:
        try:
            _datasync(self._file.fileno())
        finally:
            self._busy.release()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc) -> None:
        with self._busy:  # never close the file under a running sync
            pass


class Partial:
    """A ``.part`` file and the running digest of exactly the bytes it holds."""

    def __init__(self, path: Path):
        self.path, self.etag = path, None
        self.total: int | None = None  # the object's size, once a response tells it
        self.restart()

    def restart(self) -> None:
        self.size, self.digest = 0, hashlib.blake2b()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.restart()

    def load(self) -> None:
        if self.path.is_file():
            self.digest, self.size = read_digest(self.path)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()

    @contextmanager
    def appending(self):
        """Yield ``sink(chunk)``, which appends to the file and (beside) to the digest."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
        with (
            os.fdopen(fd, "wb") as file,
            Hasher(self.digest) as hasher,
            WriteBehind(file) as behind,
        ):
            file.truncate(self.size)  # drop a tail written but never hashed
            file.seek(self.size)

            def sink(chunk: bytes) -> None:
                file.write(chunk)
                hasher.update(chunk)
                self.size += len(chunk)
                behind.wrote(len(chunk))

            yield sink


class Meter:
    """Bytes received, and bytes announced but not yet received.

    ``on_total`` hears every change of the announced amount, so an overall
    progress bar's total grows as responses arrive and shrinks when one gives up.
    """

    def __init__(self, progress=None, on_total=None):
        self.progress, self.on_total = progress, on_total
        self.received = self.outstanding = 0
        self._lock = threading.Lock()  # the parts of a large download report from threads

    def expect(self, nbytes: int) -> None:
        with self._lock:
            if self.on_total and nbytes != self.outstanding:
                self.on_total(nbytes - self.outstanding)
            self.outstanding = nbytes

    def more(self, nbytes: int) -> None:
        """Announce ``nbytes`` more on top of what is outstanding."""
        self.expect(self.outstanding + nbytes)

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.received += nbytes
            self.outstanding = max(0, self.outstanding - nbytes)
            if self.progress:
                self.progress(nbytes)

    def close(self) -> None:
        self.expect(0)


def attempt(url: str, part: Partial, meter: Meter, cancel, stop=None, on_open=None) -> None:
    """One GET, resuming after what ``part`` holds; raises Retry for a transient failure.

    Parameters
    ----------
    url : str
        What to GET.
    part : Partial
        Where the bytes go; ``part.etag`` and ``part.total`` learn the object's ETag
        and size from the response.
    meter : Meter
        Counts the bytes.
    cancel : threading.Event or None
        Set to stop the transfer.
    stop : int, optional
        Ask only for the bytes before this offset (a large file's first part: the
        response tells its size, see :mod:`intake_vbo.parts`).
    on_open : callable, optional
        Called with the response once it is accepted and the part file is open for
        appending: from then on, another writer may use the file past ``stop``.
    """
    if cancel is not None and cancel.is_set():
        raise VboError(f"{url}: cancelled")
    headers = {"Accept-Encoding": "identity"}  # the bytes hashed are the bytes stored
    if part.size or stop:
        headers["Range"] = f"bytes={part.size}-{'' if stop is None else stop - 1}"
        if part.size and part.etag:
            headers["If-Range"] = part.etag
    with session().get(url, headers=headers, stream=True, timeout=TIMEOUT) as response:
        if response.status_code == 416 and stop and not part.size:  # bytes=0-: an empty object
            part.total = 0
            with part.appending():  # the empty part file, to install
                pass
            return
        if response.status_code == 416 and part.size:  # the part is longer than the object
            part.restart()
            raise Retry(f"HTTP 416 Range Not Satisfiable from {url}")
        check(response, url)
        _line_up(response, part)
        part.etag = response.headers.get("ETag") or part.etag
        part.total = _total(response) or part.total
        length = int(response.headers.get("Content-Length", -1))
        meter.expect(max(length, 0))
        got = 0
        with part.appending() as sink:
            if on_open is not None:
                on_open(response)
            for chunk in response.iter_content(CHUNK):
                if cancel is not None and cancel.is_set():
                    raise VboError(f"{url}: cancelled")
                sink(chunk)
                crash_point("download:chunk-written")
                got += len(chunk)
                meter.add(len(chunk))
        if 0 <= length != got:
            raise Retry(f"truncated body from {url}: {got} of {length} bytes")


def _line_up(response, part: Partial) -> None:
    """Append after a 206 that starts where the part ends; start over after a 200."""
    if response.status_code != 206:
        part.restart()  # a 200 carries the whole object
        return
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    if not match or int(match.group(1)) != part.size:
        part.restart()
        raise Retry(f"unexpected Content-Range {content_range!r} for bytes={part.size}-")


def _total(response) -> int | None:
    """The object's size: a 206's Content-Range total, a 200's Content-Length."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        return int(match.group(3)) if match and match.group(3) != "*" else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None

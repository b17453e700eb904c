"""One download on one connection into an incoming file: resumed, hashed beside, synced behind.

The cache (:mod:`intake_vbo.transfer.cache`) decides what to download and where it may
land, and :mod:`intake_vbo.transfer.parts` whether one connection or several carry it;
this module moves the bytes of one response. BLAKE2b runs in a thread of its own fed by a bounded
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

from ..base import fileops
from ..base.crash import crash_point
from ..base.errors import VboError
from ..base.fileops import datasync, open_fd
from .http import TIMEOUT, Retry, check, session

CHUNK = 1 << 20  # bytes per read and write: big for throughput, small to resume
QUEUE_CHUNKS = 8  # chunks waiting for the hashing thread: bounds memory
WRITE_BEHIND = 32 << 20  # bytes between background fdatasyncs of a download
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


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
            datasync(self._file.fileno())
        finally:
            self._busy.release()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc) -> None:
        with self._busy:  # never close the file under a running sync
            pass


class Incoming:
    """A download's ``.part`` file and the running digest of exactly the bytes it holds."""

    def __init__(self, path: Path):
        self.path, self.etag = path, None
        self.total: int | None = None  # the object's size, once a response tells it
        self.restart()

    def restart(self) -> None:
        self.size, self.digest = 0, hashlib.blake2b()

    def discard(self) -> None:
        fileops.remove(self.path)
        self.restart()

    def load(self) -> None:
        if self.path.is_file():
            self.digest, self.size = read_digest(self.path)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()

    @contextmanager
    def appending(self):
        """Yield ``sink(chunk)``, which appends to the file and (beside) to the digest."""
        fd = open_fd(self.path, os.O_WRONLY | os.O_CREAT)
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


def attempt(url: str, incoming: Incoming, meter: Meter, cancel) -> None:
    """One GET of the rest of the object after what ``incoming`` holds.

    Raises :class:`~intake_vbo.transfer.http.Retry` for a transient failure (retried by
    the caller with :func:`~intake_vbo.transfer.http.call`), resuming each time after
    the bytes already in.
    """
    response = request(url, incoming, cancel)
    if response is not None:
        with response, incoming.appending() as sink:
            receive(response, url, sink, meter, cancel)


def request(url: str, incoming: Incoming, cancel, stop: int | None = None):
    """Send the GET for the bytes after what ``incoming`` holds; check the answer's head.

    Parameters
    ----------
    url : str
        What to GET.
    incoming : Incoming
        Where the bytes go; ``incoming.etag`` and ``incoming.total`` learn the
        object's ETag and size from the response.
    cancel : threading.Event or None
        Set to stop the transfer.
    stop : int, optional
        Ask only for the bytes before this offset (a large file's first part: the
        response tells its size, see :mod:`intake_vbo.transfer.parts`).

    Returns
    -------
    requests.Response or None
        The open response, its body unread (the caller closes it); None when the
        object is empty and there is nothing to receive.
    """
    if cancel is not None and cancel.is_set():
        raise VboError(f"{url}: cancelled")
    headers = {"Accept-Encoding": "identity"}  # the bytes hashed are the bytes stored
    if incoming.size or stop:
        headers["Range"] = f"bytes={incoming.size}-{'' if stop is None else stop - 1}"
        if incoming.size and incoming.etag:
            headers["If-Range"] = incoming.etag
    response = session().get(url, headers=headers, stream=True, timeout=TIMEOUT)
    try:
        if response.status_code == 416 and stop and not incoming.size:  # an empty object
            incoming.total = 0
            with incoming.appending():  # the empty file, to install
                pass
            response.close()
            return None
        if response.status_code == 416 and incoming.size:  # longer than the object
            incoming.restart()
            raise Retry(f"HTTP 416 Range Not Satisfiable from {url}")
        check(response, url)
        _line_up(response, incoming)
    except BaseException:
        response.close()
        raise
    incoming.etag = response.headers.get("ETag") or incoming.etag
    incoming.total = _total(response) or incoming.total
    return response


def receive(response, url: str, sink, meter: Meter, cancel) -> None:
    """Give the body of an accepted response to ``sink`` (``Incoming.appending()``'s).

    Raises :class:`~intake_vbo.transfer.http.Retry` when the body ends short; what
    arrived stays in the incoming file for the next attempt to resume after.
    """
    length = int(response.headers.get("Content-Length", -1))
    meter.expect(max(length, 0))
    got = 0
    for chunk in response.iter_content(CHUNK):
        if cancel is not None and cancel.is_set():
            raise VboError(f"{url}: cancelled")
        sink(chunk)
        crash_point("download:chunk-written")
        got += len(chunk)
        meter.add(len(chunk))
    if 0 <= length != got:
        raise Retry(f"truncated body from {url}: {got} of {length} bytes")


def _line_up(response, incoming: Incoming) -> None:
    """Append after a 206 that starts where the file ends; start over after a 200."""
    if response.status_code != 206:
        incoming.restart()  # a 200 carries the whole object
        return
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    if not match or int(match.group(1)) != incoming.size:
        incoming.restart()
        raise Retry(f"unexpected Content-Range {content_range!r} for bytes={incoming.size}-")


def _total(response) -> int | None:
    """The object's size: a 206's Content-Range total, a 200's Content-Length."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        return int(match.group(3)) if match and match.group(3) != "*" else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None

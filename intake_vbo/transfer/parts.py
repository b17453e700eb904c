"""Large downloads on several connections: byte-range parts, hashed in order, journaled.

The cache (:mod:`intake_vbo.transfer.cache`) decides what to download and where;
:func:`download` is the one place that decides how: on one connection
(:mod:`intake_vbo.transfer.download`) or in parts over several
(:class:`~intake_vbo.transfer.remote.Remote`'s pinned ranges). A fresh download asks
first for the first part only (``Range: bytes=0-<part_size - 1>``). A file that fits
is done in that one request; one up to :attr:`Parallel.threshold` goes on over that
one connection (the small file path). For a larger file, the first response's
Content-Range gives the size and its ETag pins the object: every other part is a
pinned Range request (``If-Match``, 206 with exactly the range asked, the same ETag),
on up to ``connections - 1`` more connections while the first part still arrives,
and the first connection joins them when its part is in.

Parts are written at their offsets in the preallocated ``.part`` file
(:class:`~intake_vbo.base.fileops.RandomAccess`: ``os.pwrite`` where there is one);
memory holds a chunk per connection, never a part. BLAKE2b is
sequential, so one thread hashes in order beside the transfer, reading each byte
back (from the page cache) as soon as everything before it is in. Another thread
fdatasyncs the file as parts complete (the write-behind: the final fsync is short)
and then records them in the journal, ``<h>.journal`` beside ``<h>.part``. A killed
download resumes with the parts its journal names (read back and hashed, not
fetched) and fetches only the others; the rename into the cache stays the cache's,
after the digest matched.

Each part is retried with backoff (:mod:`intake_vbo.transfer.http`), resuming after the bytes
it has; a part that still fails fails the file with one line naming the part. A
server that mis-answers a part's Range request (200, another Content-Range or ETag,
412, a 4xx) gets one more chance: the file is downloaded again from its start on one
connection, and its digest decides.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import requests

from ..base import settings
from ..base.crash import crash_point
from ..base.errors import VboError
from ..base.fileops import RandomAccess
from .download import CHUNK, Incoming, attempt, receive, request
from .http import Retry, call
from .journal import Journal, Plan
from .remote import Misanswer, Remote

# Eight connections: one connection to S3 commonly carries 50-100 MB/s, and BLAKE2b
# (~730 MB/s on one core) and a synced local disk (~400 MB/s) cap a file at about
# 400-700 MB/s, which eight reach; more only add load on both ends.
CONNECTIONS = 8
# 16 MiB parts: a request's first byte (20-80 ms from S3) costs under a fifth of a part
# at 80 MB/s; a 200 MB file still splits twelve ways; a kill loses at most 8 x 16 MiB.
PART_SIZE = 16 << 20
THRESHOLD = 64 << 20  # files larger than this go in parts; smaller ones keep one connection
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parallel:
    """How large files are downloaded.

    Parameters
    ----------
    connections : int
        Connections per large file (1: one, as for small files).
    part_size : int
        Bytes per part; the first request of every download asks for this many.
    threshold : int
        Files larger than this many bytes are downloaded in parts.
    slots : threading.Semaphore, optional
        Shared by the files of one batch (:meth:`capped`): caps their connections
        in all, whatever their number.
    """

    connections: int = CONNECTIONS
    part_size: int = PART_SIZE
    threshold: int = THRESHOLD
    slots: threading.Semaphore | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, least in (("connections", 1), ("part_size", 1), ("threshold", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise VboError(f"{name} must be a whole number >= {least}, not {value!r}")

    @classmethod
    def from_env(cls, **given) -> Parallel:
        """The defaults, overridden by ``VBO_CONNECTIONS``, ``VBO_PART_SIZE`` and
        ``VBO_PARALLEL_THRESHOLD`` (sizes such as ``16M``), then by ``given`` (None: unset)."""
        values = {
            "connections": settings.connections(),
            "part_size": settings.part_size(),
            "threshold": settings.parallel_threshold(),
        }
        values.update(given)
        return cls(**{name: value for name, value in values.items() if value is not None})

    def capped(self, total: int) -> Parallel:
        """These settings, with at most ``total`` connections at once over every file."""
        return replace(self, slots=threading.BoundedSemaphore(max(1, total)))

    def slot(self):
        """A context holding one connection of the shared cap, if there is one."""
        return self.slots if self.slots is not None else nullcontext()


class _Stopped(Exception):
    """Raised in a connection's thread when the download has failed elsewhere."""


def download(url, incoming: Incoming, journal: Journal, parallel: Parallel, meter, cancel,
             backoff) -> None:  # fmt: skip
    """Make ``incoming`` (the ``.part`` file and its digest) hold the whole object at ``url``.

    Resumes what is on disk: the parts ``journal`` names, else the ``incoming.size``
    bytes of a one-connection download (hashed already by the caller). ``meter`` counts
    the bytes, ``cancel`` (an Event) stops, ``backoff`` is every request's retry policy.
    A server that mis-answers a pinned range gets one more chance: the whole file
    again on one connection, where the digest decides.
    """
    state = journal.load() if incoming.path.is_file() else None
    try:
        if state is not None:
            _resume(url, incoming, journal, parallel, meter, cancel, backoff, *state)
            return
        journal.remove()
        if incoming.size or parallel.connections < 2:
            _single(url, incoming, parallel, meter, cancel, backoff)
        else:
            _fresh(url, incoming, journal, parallel, meter, cancel, backoff)
    except Misanswer as exc:
        _log.warning("%s; downloading the whole file again on one connection", exc)
        incoming.discard()
        journal.remove()
        _single(url, incoming, parallel, meter, cancel, backoff)


def _single(url, incoming, parallel, meter, cancel, backoff) -> None:
    """The rest of the file on one connection."""
    with parallel.slot():
        call(lambda: attempt(url, incoming, meter, cancel), url, backoff)


def _resume(url, incoming, journal, parallel, meter, cancel, backoff, plan, done) -> None:
    """A download in parts that a journal names: fetch the parts it lacks."""
    incoming.restart()
    remote = Remote(url, plan.etag, plan.size, backoff)
    run = _Run(remote, plan, incoming.path, journal, parallel, meter, cancel, done)
    run.start(parallel.connections - 1)
    run.finish(incoming)


def _fresh(url, incoming, journal, parallel, meter, cancel, backoff) -> None:
    """The first part, with the other parts started as soon as its answer shows a large file."""
    head = _FirstPart(url, incoming, journal, parallel, meter, cancel, backoff)
    try:
        with parallel.slot():
            call(head.attempt, url, backoff)
    except BaseException:
        if head.run is not None:
            head.run.abort()
        raise
    if head.run is not None:
        head.run.finish(incoming, head=incoming.size)
    elif incoming.size < (incoming.total or 0) or (
        incoming.total is None and incoming.size >= parallel.part_size  # more may follow
    ):
        _single(url, incoming, parallel, meter, cancel, backoff)


class _FirstPart:
    """The first request of a fresh download: one attempt of it, for :func:`call` to retry.

    Its response decides: a small file goes on over this one connection; a large one
    starts a :class:`_Run` of the other parts (:attr:`run`) while the first part's body
    still arrives here. A body that breaks off is retried, after the bytes already in;
    once the parts run, they take over the rest of the first part instead.
    """

    def __init__(self, url, incoming, journal, parallel, meter, cancel, backoff):
        self.url, self.incoming, self.journal, self.parallel = url, incoming, journal, parallel
        self.meter, self.cancel, self.backoff = meter, cancel, backoff
        self.run: _Run | None = None
        incoming.total = None  # until the first response tells it

    def attempt(self) -> None:
        incoming = self.incoming
        stop = self.parallel.part_size if incoming.total is None else None  # a small file: all
        response = request(self.url, incoming, self.cancel, stop=stop)
        if response is None:
            return
        with response, incoming.appending() as sink:  # truncates: before any part is written
            if self.run is None and not incoming.size:
                self.run = self._start_parts(response)
            try:
                receive(response, self.url, sink, self.meter, self.cancel)
            except (Retry, requests.RequestException):
                if self.run is None:
                    raise  # retried by call(), after the bytes already in
                _log.info("%s: the first part broke off; the parts take it over", self.url)

    def _start_parts(self, response) -> _Run | None:
        """A :class:`_Run` of every part but the first, if the first answer shows a large file."""
        incoming, parallel, first = self.incoming, self.parallel, self.parallel.part_size
        if incoming.total is None or incoming.total <= max(parallel.threshold, first):
            return None
        remote = Remote(self.url, backoff=self.backoff)
        try:
            remote.pin(response, first)
        except VboError:
            return None  # no pinned ranges from this server: the one connection does it all
        plan = Plan(remote.size, remote.etag, first, parallel.part_size)
        run = _Run(remote, plan, incoming.path, self.journal, parallel, self.meter, self.cancel,
                   fresh=True)  # fmt: skip
        run.start(parallel.connections - 1)
        return run


class _Run:
    """One parallel download under way: its connections, its syncer, its hasher."""

    def __init__(self, remote: Remote, plan: Plan, path: Path, journal: Journal,
                 parallel: Parallel, meter, cancel, done=(), fresh: bool = False):  # fmt: skip
        self.remote, self.plan, self.journal = remote, plan, journal
        self.parallel, self.meter, self.cancel, self.fresh = parallel, meter, cancel, fresh
        self.spans = plan.spans()
        self.filled = [hi - lo if i in done else 0 for i, (lo, hi) in enumerate(self.spans)]
        self.todo = deque(i for i in range(int(fresh), len(self.spans)) if i not in done)
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.synced: queue.Queue = queue.Queue()  # parts complete, to be synced and journaled
        self.workers: list[threading.Thread] = []
        self.file = RandomAccess(path)
        self.syncer = threading.Thread(target=self._sync, daemon=True)

    def start(self, workers: int) -> None:
        """Journal a fresh plan, preallocate, and start the syncer and ``workers`` connections."""
        try:
            if self.fresh:
                self.journal.create(self.plan)
            start = self.spans[0][1] if self.fresh else 0  # a fresh first part is being written
            self.file.preallocate(start, self.plan.size)
        except BaseException:
            self.file.close()
            raise
        self.meter.more(sum(self._missing(i) for i in self.todo))
        self.syncer.start()
        for _ in range(max(0, workers)):
            self.workers.append(threading.Thread(target=self._work, daemon=True))
            self.workers[-1].start()

    def _missing(self, i: int) -> int:
        return self.spans[i][1] - self.spans[i][0] - self.filled[i]

    def finish(self, incoming: Incoming, head: int | None = None) -> None:
        """Hash in order while this thread is a connection too; wait for the others.

        ``head``: the bytes of the first part the first response delivered (a fresh
        download; ``incoming``'s digest covers exactly those).
        """
        if head is not None:
            with self.cond:
                self.filled[0] = head
                if head == self.spans[0][1]:
                    self.synced.put(0)
                else:
                    self.todo.appendleft(0)
        hasher = threading.Thread(target=self._hash, args=(incoming.digest, head or 0), daemon=True)
        hasher.start()
        try:
            self._work()
            hasher.join()
        except BaseException as exc:  # Ctrl-C: stop the other connections too
            self._fail(exc)
            raise
        finally:
            self._stop()
        if self.error is not None:
            raise self.error
        incoming.size = self.plan.size

    def abort(self) -> None:
        """Stop every connection (the first response failed for good)."""
        self._fail(_Stopped())
        self._stop()

    def _stop(self) -> None:
        for worker in self.workers:
            worker.join()
        self.synced.put(None)
        self.syncer.join()
        self.file.close()

    def _fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.cond.notify_all()

    def _work(self) -> None:
        """One connection: fetch missing parts until none is left."""
        try:
            while True:
                if self.cancel is not None and self.cancel.is_set():
                    raise VboError(f"{self.remote.name}: cancelled")
                with self.cond:
                    if self.error is not None or not self.todo:
                        return
                    i = self.todo.popleft()
                lo, hi = self.spans[i]
                with self.parallel.slot():
                    if self.error is not None:
                        return
                    try:
                        self.remote.get(lo + self.filled[i], hi, partial(self._write, i))
                    except VboError as exc:
                        if isinstance(exc, Misanswer):
                            raise
                        raise VboError(f"{exc} (part bytes={lo}-{hi - 1})") from exc
                self.synced.put(i)
        except _Stopped:
            pass
        except BaseException as exc:
            self._fail(exc)

    def _write(self, i: int, chunk: bytes) -> None:
        """Put a chunk of part ``i`` in place (and tell the hasher)."""
        if self.error is not None:
            raise _Stopped
        if self.cancel is not None and self.cancel.is_set():
            raise VboError(f"{self.remote.name}: cancelled")
        self.file.write_at(chunk, self.spans[i][0] + self.filled[i])
        with self.cond:
            self.filled[i] += len(chunk)
            self.cond.notify_all()
        self.meter.add(len(chunk))

    def _sync(self) -> None:
        """Datasync the file, then journal the parts completed before that sync."""
        try:
            last = False
            while not last:
                batch = [self.synced.get()]
                while not self.synced.empty():
                    batch.append(self.synced.get())
                last = None in batch
                batch = [i for i in batch if i is not None]
                if batch:  # parts in place stay useful to a resume, whatever failed since
                    self.file.datasync()
                    self.journal.record(batch)
                    crash_point("parts:part-written")
        except BaseException as exc:
            self._fail(exc)

    def _hash(self, digest, pos: int) -> None:
        """Hash from ``pos`` in order, each byte once everything before it is in."""
        try:
            k = 0
            while pos < self.plan.size:
                while self.spans[k][1] <= pos:
                    k += 1
                with self.cond:
                    while self.error is None and self.spans[k][0] + self.filled[k] <= pos:
                        self.cond.wait()
                    if self.error is not None:
                        return
                    available = self.spans[k][0] + self.filled[k]
                while pos < available:
                    data = self.file.read_at(min(CHUNK, available - pos), pos)
                    if not data:
                        raise VboError(f"{self.remote.name}: its part file ended at byte {pos}")
                    digest.update(data)
                    pos += len(data)
        except BaseException as exc:
            self._fail(exc)

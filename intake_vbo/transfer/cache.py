"""The download cache: the verified store, filled from the bucket on demand.

:class:`Cache` is the :class:`~intake_vbo.transfer.store.Store` of a cache root plus
how it downloads: a missing file is fetched under the digest's lock (one process
downloads, the others wait), hashed beside the transfer, and installed only when
its digest matches. An interrupted download resumes; the final digest catches a
wrong resume, which then starts over. :mod:`intake_vbo.transfer.parts` decides
whether one connection or several carry a file (settings in
:class:`~intake_vbo.transfer.parts.Parallel`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import requests

from ..base.errors import VboError
from ..base.progress import progress_bar
from ..base.settings import cache_dir
from .download import Meter
from .http import DEFAULT_BACKOFF, Backoff
from .parts import Parallel, download
from .store import Store

MISMATCH_RETRIES = 1  # a whole download with the wrong digest is tried again this often


def open_cache(recorded: str | os.PathLike | None = None) -> Cache:
    """The cache at ``VBO_CACHE_DIR``, else ``recorded``, else the user cache directory."""
    return Cache(cache_dir(recorded))


class Cache(Store):
    """The verified store under ``root``, and how missing files are downloaded into it.

    Parameters
    ----------
    root : str or path
        The cache directory, created on first use.
    backoff : Backoff
        Retry policy for downloads.
    parallel : Parallel, optional
        How large files are downloaded in parts; default :meth:`Parallel.from_env`
        (``VBO_CONNECTIONS``, ``VBO_PART_SIZE``, ``VBO_PARALLEL_THRESHOLD``).
    """

    def __init__(self, root: str | os.PathLike, backoff: Backoff = DEFAULT_BACKOFF,
                 parallel: Parallel | None = None):  # fmt: skip
        super().__init__(root)
        self.backoff = backoff
        self.parallel = parallel if parallel is not None else Parallel.from_env()

    def fetch(
        self,
        url: str,
        file_hash: str,
        suffix: str = ".nwb",
        progress: Callable[[int], object] | None = None,
    ) -> Path:
        """The verified local path of ``file_hash``, downloaded from ``url`` if missing.

        Safe to call from many threads and processes at once: one downloads, the
        others wait for it.

        Parameters
        ----------
        url : str
            Where to GET the bytes, e.g. ``<bucket URL><key>?versionId=<id>``.
        file_hash : str
            The BLAKE2b hex digest the bytes must have.
        suffix : str
            File name ending, such as ``".nwb"``.
        progress : callable, optional
            Called with the number of bytes received, as they arrive.

        Raises
        ------
        VboError
            A final HTTP error, exhausted retries, or a digest that never matches.
        """
        return self._fetch(url, file_hash, suffix, progress).path

    def _fetch(self, url, file_hash, suffix, progress=None, on_total=None, cancel=None,
               parallel: Parallel | None = None) -> Fetched:  # fmt: skip
        final = self.path(file_hash, suffix)
        if final.is_file():
            return Fetched(final)
        meter = Meter(progress, on_total)
        try:
            with self.lock(file_hash):
                if final.is_file():  # another process finished it while we waited
                    return Fetched(final)
                self._download(url, file_hash, final, meter, cancel, parallel or self.parallel)
        except requests.RequestException as exc:  # a malformed URL, say (an OSError too)
            raise VboError(f"{url}: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise VboError(f"{url}: cannot store it in the cache {self.root}: {exc}") from exc
        finally:
            meter.close()
        return Fetched(final, meter.received)

    def _download(self, url, digest, final, meter, cancel, parallel: Parallel) -> None:
        incoming, journal = self.incoming(digest), self.journal(digest)
        if not journal.path.exists():  # a download in parts is re-hashed by its parts
            incoming.load()  # what a one-connection download left is hashed, then resumed
        resumed = incoming.size > 0 or journal.path.exists()
        chances = MISMATCH_RETRIES + 1 + resumed  # a wrong resume restarts for free
        while not (incoming.size and incoming.hexdigest() == digest):
            download(url, incoming, journal, parallel, meter, cancel, self.backoff)
            got = incoming.hexdigest()
            if got == digest:
                break
            incoming.discard()
            journal.remove()
            chances -= 1
            if not chances:
                raise VboError(
                    f"{url}: downloaded content does not match the manifest: "
                    f"blake2b {got}, expected {digest}"
                )
        self.place(incoming, final)
        journal.remove()


class Fetched(NamedTuple):
    """Where a file is, and the bytes received for it (None: it was cached already)."""

    path: Path
    received: int | None = None


@dataclass
class FetchReport:
    """What :func:`fetch_many` did, by label: fetched, found cached, failed (with why)."""

    fetched: list = field(default_factory=list)
    cached: list = field(default_factory=list)
    failed: list[tuple[object, str]] = field(default_factory=list)
    bytes_transferred: int = 0
    paths: dict = field(default_factory=dict)  # label -> local path, for every success


def fetch_many(
    cache: Cache,
    items: Iterable[tuple],
    workers: int = 8,
    progress: bool | None = None,
    connections: int | None = None,
) -> FetchReport:
    """Fetch many files in parallel threads, under one overall progress bar.

    Parameters
    ----------
    cache : Cache
        Where the files go.
    items : iterable of (label, url, file_hash) or (label, url, file_hash, suffix)
        What to fetch; ``label`` names the file in the report (its key, say).
    workers : int
        Parallel downloads.
    progress : bool, optional
        Show the bar (bytes, rate, ETA); by default in a notebook or on a terminal.
        Its total grows as the servers announce sizes.
    connections : int, optional
        Connections per large file (default: the cache's, see :class:`Parallel`).
        All files together use at most ``max(workers, connections)`` at once.

    Returns
    -------
    FetchReport
        Everything that succeeded is kept; failures are collected, not raised.
    """
    report, cancel, lock = FetchReport(), threading.Event(), threading.Lock()
    parallel = cache.parallel
    if connections is not None:
        parallel = replace(parallel, connections=connections)
    parallel = parallel.capped(max(workers, parallel.connections))
    bar = progress_bar(0, "fetch", unit="B", show=progress)

    def grow(nbytes: int) -> None:
        with lock:
            bar.total += nbytes
            bar.refresh()

    def advance(nbytes: int) -> None:
        with lock:
            bar.update(nbytes)

    def one(item: tuple) -> tuple[object, Fetched | str]:
        """``(label, what was fetched)`` or ``(label, why it failed)``."""
        label, url, digest, *rest = item
        try:
            suffix = rest[0] if rest else ".nwb"
            return label, cache._fetch(url, digest, suffix, advance, grow, cancel, parallel)
        except Exception as exc:  # collected: one bad file must not stop the others
            reason = str(exc) if isinstance(exc, VboError) else f"{type(exc).__name__}: {exc}"
            return label, " ".join(reason.split())

    with bar, ThreadPoolExecutor(max(1, workers)) as pool:
        try:
            for label, outcome in pool.map(one, list(items)):
                if isinstance(outcome, str):
                    report.failed.append((label, outcome))
                    continue
                report.paths[label] = outcome.path
                (report.cached if outcome.received is None else report.fetched).append(label)
                report.bytes_transferred += outcome.received or 0
        except BaseException:  # Ctrl-C: stop the transfers; their parts stay for a resume
            cancel.set()
            pool.shutdown(cancel_futures=True)
            raise
    return report


def fetch_one(cache: Cache, label: str, url: str, file_hash: str, suffix: str = ".nwb") -> Path:
    """One file into the cache under :func:`fetch_many`'s progress bar; its path.

    What a notebook user sees when an NWB source downloads on first use (a 3 GB file
    takes a while). Raises the failure as one line naming ``label``.
    """
    report = fetch_many(cache, [(label, url, file_hash, suffix)], workers=1)
    for failed, reason in report.failed:
        raise VboError(f"{failed}: {reason}")
    return report.paths[label]

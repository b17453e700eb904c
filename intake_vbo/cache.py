"""The verified, resumable, concurrent, content-addressed download cache.

Layout under the root (a file is named by the BLAKE2b digest of its bytes, so one
copy serves every release version that lists it; paths derive only from validated
digests and suffixes, so nothing is ever written outside the root)::

    <root>/blake2b/<h[:2]>/<h><suffix>   complete, verified files (read-only)
    <root>/partial/<h>.part              downloads in progress or interrupted
    <root>/partial/<h>.journal           the parts of a large download that are on disk
    <root>/locks/<h>.lock                one flock per digest

Only verified files appear at a final path: a download streams into its ``.part``,
hashed beside the transfer, and is fsynced and renamed into place only when the
digest matches. An interrupted download resumes with an HTTP Range request; the
final digest catches a wrong resume, which then starts over. Large files come in
parts over several connections (:mod:`intake_vbo.parts`, settings in
:class:`~intake_vbo.parts.Parallel`); small ones over one (:mod:`intake_vbo.stream`).

Sharing one cache: processes and users take turns through ``flock`` on the lock
files (created 0o666, so every user can take them; a killed process's lock dies
with it; the shared disk must support flock, as local disks and NFSv4 do).
Directories are created 0o775 minus the umask: with the usual lab umask 002 they
are group-writable, and a set-group-ID bit on the root is inherited below it
(Linux), keeping the lab's group. Finished files lose their write bits (0o444
minus the umask), so a tool opening an NWB file for writing fails instead of
corrupting the cache; removing one still only takes write access to its directory.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import requests

from .crash import crash_point
from .errors import VboError
from .http import DEFAULT_BACKOFF, Backoff
from .journal import Journal
from .parts import Parallel, download
from .stream import CHUNK, Meter, Partial

MISMATCH_RETRIES = 1  # a whole download with the wrong digest is tried again this often
DIR_MODE = 0o775
DIGEST = re.compile(r"[0-9a-f]{128}")
SUFFIX = re.compile(r"\.[a-z0-9]{1,16}")
WORK_FILES = {"partial": (".part", ".journal"), "locks": (".lock",)}  # folder -> endings


def cache_dir(recorded: str | os.PathLike | None = None) -> Path:
    """The cache root: ``VBO_CACHE_DIR``, else ``recorded``, else the user cache directory.

    Parameters
    ----------
    recorded : str or path, optional
        The ``--cache-dir`` recorded when the catalog was built.
    """
    chosen = os.environ.get("VBO_CACHE_DIR") or recorded
    if not chosen:
        import platformdirs

        chosen = platformdirs.user_cache_dir("intake-vbo")
    return Path(chosen).expanduser().absolute()


def open_cache(recorded: str | os.PathLike | None = None) -> Cache:
    """The cache at :func:`cache_dir` (``VBO_CACHE_DIR``, else ``recorded``, else the user's)."""
    return Cache(cache_dir(recorded))


class Cache:
    """A content-addressed store of verified files under ``root``.

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
        self.root = Path(root).expanduser().absolute()
        self.backoff = backoff
        self.parallel = parallel if parallel is not None else Parallel.from_env()

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def path(self, file_hash: str, suffix: str = ".nwb") -> Path:
        """Where the content with digest ``file_hash`` lives (it may not exist yet)."""
        digest, suffix = _valid_digest(file_hash), valid_suffix(suffix)
        return self.root / "blake2b" / digest[:2] / f"{digest}{suffix}"

    def has(self, file_hash: str, suffix: str = ".nwb") -> bool:
        """Whether that content is cached."""
        return self.path(file_hash, suffix).is_file()

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

    def lock(self, digest: str):
        from filelock import FileLock

        return FileLock(self._work_file("locks", digest), mode=0o666)

    def _part(self, digest: str) -> Partial:
        return Partial(self._work_file("partial", digest))

    def _journal(self, digest: str) -> Journal:
        return Journal(self._work_file("partial", digest, ".journal"))

    def _work_file(self, folder: str, digest: str, ending: str | None = None) -> Path:
        """The lock or partial download of ``digest``, its folder created."""
        _makedirs(self.root / folder)
        return self.root / folder / f"{digest}{ending or WORK_FILES[folder][0]}"

    def _download(self, url, digest, final, meter, cancel, parallel: Parallel) -> None:
        part, journal = self._part(digest), self._journal(digest)
        if not journal.path.exists():  # a download in parts is re-hashed by its parts
            part.load()  # what a one-connection download left is hashed, then resumed
        resumed = part.size > 0 or journal.path.exists()
        chances = MISMATCH_RETRIES + 1 + resumed  # a wrong resume restarts for free
        while not (part.size and part.hexdigest() == digest):
            download(url, part, journal, parallel, meter, cancel, self.backoff)
            got = part.hexdigest()
            if got == digest:
                break
            part.discard()
            journal.remove()
            chances -= 1
            if not chances:
                raise VboError(
                    f"{url}: downloaded content does not match the manifest: "
                    f"blake2b {got}, expected {digest}"
                )
        _makedirs(final.parent)
        _install(part.path, final)
        journal.remove()

    def adopt_file(self, source: Path, digest: str, suffix: str) -> bool:
        """Take a local file with a known digest: hardlink it, else copy and check it."""
        final = self.path(digest, suffix)
        with self.lock(digest):
            if final.is_file():
                return False
            _makedirs(final.parent)
            try:
                os.link(source, final)  # same filesystem: no copy, no extra space
                return True
            except OSError:
                pass
            with open(source, "rb") as src:
                chunks = iter(lambda: src.read(CHUNK), b"")
                self._write_verified(digest, final, chunks, f"{source}: changed while being copied")
            return True

    def install(
        self, digest: str, chunks: Iterable[bytes], what: str, suffix: str = ".nwb"
    ) -> bool:
        """Install content assembled elsewhere (a streamed file's blocks), verified first.

        Parameters
        ----------
        digest : str
            The BLAKE2b the bytes must have.
        chunks : iterable of bytes
            The file's bytes, in order.
        what : str
            Names the source, for the error message.
        suffix : str
            File name ending.

        Returns
        -------
        bool
            True if installed, False if the content was cached already.

        Raises
        ------
        VboError
            The bytes do not have that digest; nothing is installed.
        """
        final = self.path(digest, suffix)
        with self.lock(digest):
            if final.is_file():
                return False
            _makedirs(final.parent)
            self._write_verified(digest, final, chunks, what)
            return True

    def _write_verified(self, digest: str, final: Path, chunks: Iterable[bytes], what: str):
        """Write ``chunks`` to the digest's part file and install it if the digest matches."""
        part = self._part(digest)
        self._journal(digest).remove()  # a download in parts left behind: superseded
        with part.appending() as sink:
            for chunk in chunks:
                sink(chunk)
        if part.hexdigest() != digest:
            part.discard()
            raise VboError(f"{what}: content does not match blake2b {digest[:16]}...")
        _install(part.path, final)


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
        Show the bar (bytes, rate, ETA); by default only when stderr is a terminal.
        Its total grows as the servers announce sizes.
    connections : int, optional
        Connections per large file (default: the cache's, see :class:`Parallel`).
        All files together use at most ``max(workers, connections)`` at once.

    Returns
    -------
    FetchReport
        Everything that succeeded is kept; failures are collected, not raised.
    """
    from tqdm import tqdm

    report, cancel, lock = FetchReport(), threading.Event(), threading.Lock()
    parallel = cache.parallel
    if connections is not None:
        parallel = replace(parallel, connections=connections)
    parallel = parallel.capped(max(workers, parallel.connections))
    disable = None if progress is None else not progress
    bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, desc="fetch", disable=disable)

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


def _install(part: Path, final: Path) -> None:
    """fsync the verified part, drop its write bits, and rename it into place (atomic)."""
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    os.chmod(part, mode & 0o444)
    crash_point("download:before-rename")
    os.replace(part, final)


def _makedirs(path: Path) -> None:
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)


def _valid_digest(file_hash: str) -> str:
    if not isinstance(file_hash, str) or not DIGEST.fullmatch(file_hash):
        raise VboError(f"not a BLAKE2b hex digest (128 lowercase hex): {str(file_hash)[:80]!r}")
    return file_hash


def valid_suffix(suffix: str) -> str:
    if not isinstance(suffix, str) or not SUFFIX.fullmatch(suffix):
        raise VboError(f"not a file name suffix like '.nwb': {str(suffix)[:40]!r}")
    return suffix

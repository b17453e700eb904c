"""The verified store: content-addressed files under a cache root, installed atomically.

Layout under the root (a file is named by the BLAKE2b digest of its bytes, so one
copy serves every release version that lists it; paths derive only from validated
digests and suffixes, so nothing is ever written outside the root)::

    <root>/blake2b/<h[:2]>/<h><suffix>   complete, verified files (read-only)
    <root>/partial/<h>.part              downloads in progress or interrupted
    <root>/partial/<h>.journal           the parts of a large download that are on disk
    <root>/partial/<h>.take              a copy being made of another user's partial file
    <root>/locks/<h>.lock                one flock per digest

Only verified files appear at a final path: whatever fills the store (a download,
the blocks of a streamed file, an adopted local file) writes a ``.part`` file first,
and it is fsynced and renamed into place only when its digest matches.

Sharing one store: processes and users take turns through ``flock`` on the lock
files (created 0o666, so every user can take them; a killed process's lock dies
with it; the shared disk must support flock, as local disks and NFSv4 do).
Directories are created 0o775 minus the umask: with the usual lab umask 002 they
are group-writable, and a set-group-ID bit on the root is inherited below it
(Linux), keeping the lab's group. Finished files lose their write bits (0o444
minus the umask), so a tool opening an NWB file for writing fails instead of
corrupting the cache; removing one still only takes write access to its directory.
A partial download another user left (killed, say) is taken over before it is
resumed: copied to a file of one's own that replaces it (:meth:`Store.take_over`),
since only a file's owner may change its modes when it is installed. A refusal (a
directory that is not group-writable) is one line naming it, its owner and its mode.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..base import fileops
from ..base.crash import crash_point
from ..base.errors import VboError
from ..base.hashes import check_file_hash
from ..base.settings import local_dir
from .download import CHUNK, Incoming
from .journal import Journal

SUFFIX = re.compile(r"\.[a-z0-9]{1,16}")
WORK_FILES = {"partial": (".part", ".journal", ".take"), "locks": (".lock",)}  # folder -> endings


class Store:
    """Verified files under ``root``, named by their BLAKE2b.

    Parameters
    ----------
    root : str or path
        The cache directory, created on first use.

    Examples
    --------
    >>> store = Store("/tmp/vbo-cache")
    >>> store.path("ab" * 64).relative_to(store.root).parts[:2]
    ('blake2b', 'ab')
    """

    def __init__(self, root: str | os.PathLike):
        self.root = local_dir(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    def path(self, file_hash: str, suffix: str = ".nwb") -> Path:
        """Where the content with digest ``file_hash`` lives (it may not exist yet)."""
        digest, suffix = check_file_hash(file_hash), valid_suffix(suffix)
        return self.root / "blake2b" / digest[:2] / f"{digest}{suffix}"

    def has(self, file_hash: str, suffix: str = ".nwb") -> bool:
        """Whether that content is stored."""
        return self.path(file_hash, suffix).is_file()

    def lock(self, digest: str):
        """The flock of one digest: one writer of that content at a time, in any process."""
        from filelock import FileLock

        return FileLock(self.work_file("locks", digest), mode=fileops.FILE_MODE)

    def incoming(self, digest: str) -> Incoming:
        """The ``.part`` file a download or an assembly of ``digest`` writes."""
        return Incoming(self.work_file("partial", digest))

    def journal(self, digest: str) -> Journal:
        """The journal of a download of ``digest`` in parts."""
        return Journal(self.work_file("partial", digest, ".journal"))

    def take_over(self, digest: str) -> None:
        """Make the partial download of ``digest`` this user's, if another user left it.

        Called under the digest's lock, before a resume: the bytes and the journal stay
        (copied into files of one's own), so the download goes on where it stopped.
        """
        spare = self.work_file("partial", digest, ".take")
        for ending in (".part", ".journal"):
            fileops.take_over(self.work_file("partial", digest, ending), spare)

    def work_file(self, folder: str, digest: str, ending: str | None = None) -> Path:
        """The lock or partial download of ``digest``, its folder created."""
        fileops.makedirs(self.root / folder)
        return self.root / folder / f"{digest}{ending or WORK_FILES[folder][0]}"

    def place(self, incoming: Incoming, final: Path) -> None:
        """Install a verified ``.part`` file at its final path (atomic)."""
        fileops.makedirs(final.parent)
        fileops.install(incoming.path, final, lambda: crash_point("download:before-rename"))

    def adopt_file(self, source: Path, digest: str, suffix: str) -> bool:
        """Take a local file with a known digest: hardlink it, else copy and check it."""
        final = self.path(digest, suffix)
        with self.lock(digest):
            if final.is_file():
                return False
            fileops.makedirs(final.parent)
            try:  # same filesystem: no copy, no extra space; a private file is copied
                if fileops.readable_as_created(source):  # ... so every user can read it
                    os.link(source, final)
                    return True
            except OSError:  # another file system, or another user's file (Linux refuses)
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
            self._write_verified(digest, final, chunks, what)
            return True

    def _write_verified(self, digest: str, final: Path, chunks: Iterable[bytes], what: str):
        """Write ``chunks`` to the digest's part file and install it if the digest matches."""
        incoming = self.incoming(digest)
        incoming.discard()  # whatever a download left (perhaps another user's): superseded
        self.journal(digest).remove()
        with incoming.appending() as sink:
            for chunk in chunks:
                sink(chunk)
        if incoming.hexdigest() != digest:
            incoming.discard()
            raise VboError(f"{what}: content does not match blake2b {digest[:16]}...")
        self.place(incoming, final)


def valid_suffix(suffix: str) -> str:
    """``suffix`` if it is a file name ending such as ``.nwb``, else a one-line error."""
    if not isinstance(suffix, str) or not SUFFIX.fullmatch(suffix):
        raise VboError(f"not a file name suffix like '.nwb': {str(suffix)[:40]!r}")
    return suffix

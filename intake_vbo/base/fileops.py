"""File operations with a POSIX fast path and a portable path (Windows, macOS).

Every platform-specific file call of the package is here, so the rest reads the same
everywhere. The fast path uses what Linux offers (``os.pwrite``/``os.pread``,
``os.fdatasync``, ``os.posix_fallocate``); the portable path does the same job with
what every platform has, and is taken where a fast call is missing or when
``VBO_PORTABLE`` is set (the test suite runs the transfer tests both ways):

- positioned reads and writes: ``seek`` then ``read``/``write`` under a lock per file;
- durability: ``fdatasync``, else ``fsync`` (macOS), always on a writable descriptor
  (Windows refuses to flush a read-only one);
- every descriptor opened with ``O_BINARY`` (Windows opens text mode without it);
- installing, replacing and removing a read-only file: Windows refuses to unlink or
  replace a file without write permission, or one another process holds open, so
  write permission is restored first and a refused replace is retried briefly.

Sharing a directory between the Unix users of a lab's group (POSIX): files and
directories are created group-writable under the lab's umask 002 (:data:`FILE_MODE`,
:data:`DIR_MODE`; a set-group-ID directory gives what is created in it its group), a
file another member left is taken over by a copy of one's own (:func:`take_over`;
renaming in a group-writable directory works whoever owns what it replaces), and a
refusal is one line naming what refused, its owner and its mode (:func:`shared`).

>>> from pathlib import Path; import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     f = RandomAccess(Path(d) / "x")
...     f.write_at(b"abc", 2); f.read_at(3, 2)
...     f.close()
b'abc'
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import VboError
from .settings import portable

try:
    import grp
    import pwd
except ImportError:  # Windows: no Unix users and groups
    grp = pwd = None

DIR_MODE = 0o775  # minus the umask: group-writable under a lab's umask 002
FILE_MODE = 0o666  # minus the umask; lock files stay takeable by every user
BINARY = getattr(os, "O_BINARY", 0)  # Windows only; 0 elsewhere
REPLACE_TRIES = 20  # a refused replace (Windows: the target is open) is retried this often
REPLACE_WAIT = 0.05  # seconds between those tries
SHARE_HINT = "set umask 002 and chmod g+ws"  # what a lab's users and directories need


def _fast(name: str):
    """``os.<name>`` when the fast path is allowed and the platform has it, else None."""
    return None if portable() else getattr(os, name, None)


def makedirs(path: str | os.PathLike) -> None:
    """Create ``path`` and its parents with :data:`DIR_MODE` (minus the umask)."""
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)


def open_fd(path: str | os.PathLike, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` in binary mode on every platform."""
    return os.open(path, flags | BINARY, mode)


def datasync(fd: int) -> None:
    """Make a file's bytes durable: ``fdatasync`` where it exists, else ``fsync``.

    The descriptor must be open for writing (Windows cannot flush a read-only one).
    """
    (_fast("fdatasync") or os.fsync)(fd)


def write_all(fd: int, data) -> None:
    """Write every byte of ``data`` at the descriptor's position."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RandomAccess:
    """A file written and read at offsets from many threads (the parts of a download).

    ``os.pwrite``/``os.pread`` where they exist; elsewhere a seek and a read or write
    under one lock, so that two threads never move each other's position.

    Parameters
    ----------
    path : path
        The file, created if missing (never truncated).
    """

    def __init__(self, path: str | os.PathLike):
        self.fd = open_fd(path, os.O_RDWR | os.O_CREAT)
        self._lock = threading.Lock()

    def write_at(self, data, offset: int) -> None:
        """Write every byte of ``data`` at ``offset``."""
        pwrite, view = _fast("pwrite"), memoryview(data)
        if pwrite is None:
            with self._lock:
                os.lseek(self.fd, offset, os.SEEK_SET)
                write_all(self.fd, view)
            return
        while view:
            written = pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def read_at(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer only at the end of the file)."""
        pread = _fast("pread")
        if pread is not None:
            return pread(self.fd, size, offset)
        with self._lock:
            os.lseek(self.fd, offset, os.SEEK_SET)
            return os.read(self.fd, size)

    def datasync(self) -> None:
        datasync(self.fd)

    def preallocate(self, start: int, stop: int) -> None:
        """Reserve the disk space for bytes ``[start, stop)`` (or at least set the size)."""
        fallocate = _fast("posix_fallocate")
        if fallocate is not None and stop > start:
            try:
                fallocate(self.fd, start, stop - start)
                return
            except OSError:  # not on every file system
                pass
        if os.fstat(self.fd).st_size < stop:
            os.ftruncate(self.fd, stop)

    def close(self) -> None:
        os.close(self.fd)


def install(work: Path, final: Path, before_rename=None) -> None:
    """Make a finished file durable, drop its write bits and rename it into place.

    Parameters
    ----------
    work : Path
        The finished file (verified by the caller), writable.
    final : Path
        Its place: appears whole or not at all.
    before_rename : callable, optional
        Called just before the rename (a crash point).
    """
    fd = open_fd(work, os.O_RDWR)  # writable: Windows flushes no read-only descriptor
    try:
        os.fsync(fd)
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    os.chmod(work, mode & 0o444)
    if before_rename is not None:
        before_rename()
    replace(work, final)


def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """``os.replace``, retried briefly where a reader holding ``dst`` open refuses it."""
    for attempt in range(REPLACE_TRIES):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if attempt + 1 == REPLACE_TRIES or not _writable_again(dst):
                raise
            time.sleep(REPLACE_WAIT)


def remove(path: str | os.PathLike, missing_ok: bool = True) -> None:
    """Delete a file, read-only or not (Windows refuses to unlink a read-only file)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise
    except PermissionError:
        if not _writable_again(path):
            raise
        os.unlink(path)


def _writable_again(path: str | os.PathLike) -> bool:
    """Give a read-only file its owner's write bit back; whether there was one to give.

    True also when the file is writable already (the refusal had another cause, such as
    a reader holding it open on Windows: worth another try).
    """
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True
    if not mode & stat.S_IWUSR:
        try:
            os.chmod(path, mode | stat.S_IWUSR)
        except OSError:  # another user's file: nothing to do here
            return False
    return True


def take_over(path: Path, spare: Path) -> bool:
    """Make a file another user left one's own, same bytes, same place; whether it was.

    Its owner's file cannot be given new modes (an install makes a file read-only) by
    anyone else, but a group-writable directory lets anyone rename over it: the bytes
    are copied to ``spare`` (a file of one's own), which replaces it. A file one cannot
    even read is removed instead (it is a partial download: only time is lost). The
    caller holds the lock that keeps every other writer off ``path``.
    """
    me = getattr(os, "geteuid", None)
    try:
        if me is None or os.stat(path).st_uid == me():  # Windows: no owners to take over
            return False
    except FileNotFoundError:
        return False
    remove(spare)  # a crash's leftover, perhaps another user's
    try:
        shutil.copyfile(path, spare)
    except PermissionError:
        remove(spare)
        remove(path)
        return True
    replace(spare, path)
    return True


def umask() -> int:
    """This process's umask: read where Linux shows it, else set and put back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def readable_as_created(path: str | os.PathLike) -> bool:
    """Whether ``path`` is readable by everyone a file this process creates would be."""
    wanted = FILE_MODE & 0o444 & ~umask()
    return stat.S_IMODE(os.stat(path).st_mode) & wanted == wanted


@contextmanager
def shared(root: str | os.PathLike, what: str = "cache"):
    """Turn a refusal under ``root`` into a one-line VboError naming what refused.

    Parameters
    ----------
    root : path
        The directory a lab's users share (the cache, a catalog).
    what : str
        What it is, for the message: ``cache <root> is not writable by group <g>:
        <path> is owned by <user>:<g>, mode drwxr-sr-x (set umask 002 and chmod g+ws)``.

    A refusal about a path outside ``root`` (a bucket on disk, say) passes unchanged.
    """
    try:
        yield
    except PermissionError as exc:
        raise refusal(root, exc, what) from exc


def refusal(root: str | os.PathLike, exc: PermissionError, what: str = "cache") -> Exception:
    """What :func:`shared` raises for ``exc``: the one-line VboError, or ``exc`` itself
    when it is about a path outside ``root``. For hot paths, where a ``try`` costs
    nothing and a context manager would cost every call."""
    top = os.path.abspath(root)
    where = os.path.abspath(exc.filename) if exc.filename else top
    return not_shared(top, Path(where), what) if _inside(where, top) else exc


def _inside(path: str, top: str) -> bool:
    try:
        return os.path.commonpath([top, path]) == top
    except ValueError:  # Windows: another drive
        return False


def not_shared(root: str, path: Path, what: str = "cache") -> VboError:
    """The refusal of ``path`` under a shared ``root``, in one line (see :func:`shared`)."""
    culprit = _refuser(path)
    try:
        info = os.stat(culprit)
    except OSError as exc:
        return VboError(f"{what} {root}: {culprit}: {exc.strerror} ({SHARE_HINT})")
    group, mine = _group(info.st_gid), _groups()
    hint = SHARE_HINT
    if info.st_mode & stat.S_IWGRP and mine is not None and info.st_gid not in mine:
        hint = f"user {_user(os.geteuid())} is not in group {group}"
    owner = _user(info.st_uid)
    return VboError(
        f"{what} {root} is not writable by group {group}: {culprit} is owned by "
        f"{owner}:{group}, mode {stat.filemode(info.st_mode)} ({hint})"
    )


def _refuser(path: Path) -> Path:
    """What refused an operation on ``path``: its directory if closed to us, else itself.

    Creating, renaming and removing need the directory; opening needs the file. A path
    that does not exist (yet) stands for its nearest existing directory.
    """
    parent = path.parent
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        return parent
    return next((p for p in (path, *path.parents) if os.path.lexists(p)), path)


def _user(uid: int) -> str:
    """A user's name, else (no account by that number) the number."""
    try:
        return pwd.getpwuid(uid).pw_name
    except (AttributeError, KeyError):
        return str(uid)


def _group(gid: int) -> str:
    """A group's name, else the number."""
    try:
        return grp.getgrgid(gid).gr_name
    except (AttributeError, KeyError):
        return str(gid)


def _groups() -> set[int] | None:
    """The groups this process acts with (None where there are none: Windows)."""
    if not hasattr(os, "getgroups"):
        return None
    return {os.getegid(), *os.getgroups()}

"""Emulate, in this process, the file system rules of the platforms without POSIX's fast calls.

:func:`windows_like` makes Linux behave, for the file operations of
``intake_vbo.base.fileops``, as Windows does: the fast path is switched off
(``VBO_PORTABLE=1``) and its calls are gone (``os.pwrite``, ``os.pread``,
``os.fdatasync``, ``os.posix_fallocate``); ``os.fsync`` refuses a descriptor opened
read-only; ``os.unlink``/``os.remove`` refuse a file without its owner's write bit,
``os.replace`` a destination without it, and ``os.rename`` any destination that exists.
pathlib goes through the same calls. Everything is undone with the ``monkeypatch`` given
(at a test's teardown, before pytest cleans its temporary directories).

A child process inherits only ``VBO_PORTABLE=1`` (it takes the portable path, on Linux's
rules).
"""

from __future__ import annotations

import errno
import fcntl
import os
import pathlib
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

FAST_CALLS = ("pwrite", "pread", "fdatasync", "posix_fallocate")


@dataclass
class Emulation:
    """What the emulation saw: every ``fsync`` let through, every refusal it made."""

    fsyncs: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (call, path or fd)

    def refusals(self, call: str) -> list[str]:
        return [what for name, what in self.refused if name == call]


def windows_like(monkeypatch: pytest.MonkeyPatch) -> Emulation:
    """Apply the emulation through ``monkeypatch``; returns what it records."""
    seen = Emulation()
    real_fsync, real_unlink, real_remove = os.fsync, os.unlink, os.remove
    real_replace, real_rename = os.replace, os.rename

    def fsync(fd) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        if fcntl.fcntl(number, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            seen.refused.append(("fsync", str(number)))
            raise OSError(errno.EBADF, "Bad file descriptor (read-only: Windows cannot flush it)")
        real_fsync(number)
        seen.fsyncs += 1

    def refuse_read_only(call: str, path, dir_fd) -> None:
        try:
            mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            return  # missing (or a dangling name): the real call says so
        if not stat.S_ISDIR(mode) and not mode & stat.S_IWUSR:
            seen.refused.append((call, os.fsdecode(path)))
            raise PermissionError(errno.EACCES, "Access is denied (a read-only file)", path)

    def unlink(path, *, dir_fd=None) -> None:
        refuse_read_only("unlink", path, dir_fd)
        real_unlink(path, dir_fd=dir_fd)

    def remove(path, *, dir_fd=None) -> None:
        refuse_read_only("unlink", path, dir_fd)
        real_remove(path, dir_fd=dir_fd)

    def replace(src, dst, *, src_dir_fd=None, dst_dir_fd=None) -> None:
        refuse_read_only("replace", dst, dst_dir_fd)
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def rename(src, dst, *, src_dir_fd=None, dst_dir_fd=None) -> None:
        try:
            os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            real_rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            return
        seen.refused.append(("rename", os.fsdecode(dst)))
        raise FileExistsError(errno.EEXIST, "Cannot create a file when that file already exists",
                              dst)  # fmt: skip

    monkeypatch.setenv("VBO_PORTABLE", "1")
    for name in FAST_CALLS:
        monkeypatch.delattr(os, name, raising=False)
    calls = {"fsync": fsync, "unlink": unlink, "remove": remove, "replace": replace,
             "rename": rename}  # fmt: skip
    for name, call in calls.items():
        monkeypatch.setattr(os, name, call)
    # Python 3.10's pathlib calls os through an accessor holding the functions themselves
    # (3.11 on look them up in os at each call).
    accessor = getattr(pathlib, "_NormalAccessor", None)
    for name in ("unlink", "replace", "rename"):
        if accessor is not None and hasattr(accessor, name):
            monkeypatch.setattr(accessor, name, staticmethod(calls[name]))
    return seen


@contextmanager
def emulated():
    """:func:`windows_like` for the duration of a ``with`` block."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield windows_like(monkeypatch)

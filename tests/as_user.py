"""Run a function in a child process as another Unix user, from a test run as root.

A root process may start a child under any uid and gid, with any supplementary groups
and umask (``subprocess``'s ``user``, ``group``, ``extra_groups``, ``umask``): no
accounts are needed, so two members of one lab group are two numbers. The function is
named by module and name, imported fresh in the child (the package's import-time
settings, such as ``VBO_CRASH_AT``, come from the child's environment), and its result
or exception comes back pickled through a pipe; an exception is raised again here.

The child runs this test run's packages (the virtual environment's site-packages and
the worktree) under an interpreter the other users can reach: this one, or, when its
installation lies under a directory closed to others (``/root/.pyenv`` under a 0700
``/root``), the system's interpreter of the same ``X.Y`` (the same ABI).

>>> alice = User(61001, 61000)                          # doctest: +SKIP
>>> run_as(alice, os.getuid)                            # doctest: +SKIP
61001
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import site
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@dataclass(frozen=True)
class User:
    """A uid, its primary group, its other groups and its umask (a lab's is 002)."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    umask: int = 0o002
    env: dict = field(default_factory=dict, compare=False)  # more environment variables


@dataclass(frozen=True)
class Killed:
    """What :func:`run_as` returns when the child died by a signal (a crash point)."""

    signal: int


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def reachable(path: str | os.PathLike) -> bool:
    """Whether any user can reach ``path`` (every directory above it searchable by others)."""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in real.parents) and real.exists()


def interpreter() -> str | None:
    """A Python of this one's version that other users can run, or None."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, shutil.which(version), f"/usr/bin/{version}"]
    return next((c for c in candidates if c and reachable(c)), None)


def run_as(user: User, func, *args, timeout: float = 120, **kwargs):
    """``func(*args, **kwargs)`` in a child process running as ``user``.

    Returns what the function returned, or :class:`Killed` when the child was killed
    by a signal; raises what it raised (a failure to start, the child's stderr).
    """
    python = interpreter()
    if python is None:
        raise RuntimeError(f"no Python {sys.version_info[:2]} that other users can run")
    read, write = os.pipe()
    payload = pickle.dumps((func.__module__, func.__qualname__, args, kwargs))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "HOME": user.env.get("HOME", "/nonexistent"),
        "PYTHONFAULTHANDLER": "1",
        **user.env,
    }
    try:
        child = subprocess.Popen(  # noqa: S603 (our own interpreter and file)
            [python, __file__, str(write), *site.getsitepackages()],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(write,), env=env,
            cwd="/", user=user.uid, group=user.gid, extra_groups=[user.gid, *user.groups],
            umask=user.umask,
        )  # fmt: skip
    finally:
        os.close(write)
    with ThreadPoolExecutor(1) as pool, os.fdopen(read, "rb") as result:
        answer = pool.submit(result.read)  # beside: a large result fills the pipe
        try:
            _, err = child.communicate(payload, timeout=timeout)
        except subprocess.TimeoutExpired:  # a hang: its stacks (faulthandler) tell where
            child.send_signal(signal.SIGABRT)
            _, err = child.communicate()
            stacks = err.decode(errors="replace")
            raise RuntimeError(f"child as uid {user.uid} hung: {stacks}") from None
        answer = answer.result()
    if child.returncode < 0:  # killed by a signal
        return Killed(-child.returncode)
    if not answer:
        raise RuntimeError(f"child as uid {user.uid} failed: {err.decode(errors='replace')}")
    ok, value = pickle.loads(answer)
    if not ok:
        raise value
    return value


def _child(fd: int, site_dirs: list[str]) -> None:
    for where in site_dirs:  # this run's packages, whichever interpreter runs the child
        site.addsitedir(where)
    module, name, args, kwargs = pickle.loads(sys.stdin.buffer.read())
    import importlib

    func = importlib.import_module(module)
    for part in name.split("."):
        func = getattr(func, part)
    try:
        outcome = (True, func(*args, **kwargs))
    except Exception as exc:  # handed back to the parent, raised there
        outcome = (False, exc)
    with os.fdopen(fd, "wb") as out:
        out.write(pickle.dumps(outcome))


if __name__ == "__main__":
    _child(int(sys.argv[1]), sys.argv[2:])

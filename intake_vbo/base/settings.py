"""The one reader of the environment: every ``VBO_*`` variable, what it means, its value.

No other module reads ``os.environ`` for a ``VBO_*`` name (a test holds the package to
that, and checks that the README lists exactly the variables below: the user settings
in its Settings table, the test hooks in its Development section). Each accessor reads
the variable when called, so a setting changed after import is honoured.

>>> parse_size("16M", "VBO_PART_SIZE")
16777216
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import VboError


@dataclass(frozen=True)
class Setting:
    """One environment variable the package reads.

    Attributes
    ----------
    name : str
        The variable, ``VBO_...``.
    meaning : str
        What it does, in a line.
    hook : bool
        A test hook (documented for developers), not a user setting.
    """

    name: str
    meaning: str
    hook: bool = False

    def text(self) -> str | None:
        """The variable's value, stripped; None when unset or blank."""
        value = os.environ.get(self.name, "").strip()
        return value or None


CACHE_DIR = Setting("VBO_CACHE_DIR", "the download cache")
BUCKET_URL = Setting("VBO_BUCKET_URL", "where files are fetched from (a mirror)")
CONNECTIONS = Setting("VBO_CONNECTIONS", "connections per large file")
PART_SIZE = Setting("VBO_PART_SIZE", "bytes per part of a large download")
PARALLEL_THRESHOLD = Setting("VBO_PARALLEL_THRESHOLD", "size above which a file comes in parts")
STREAM_CACHE_MAX = Setting("VBO_STREAM_CACHE_MAX", "cap on the block store of streamed reads")
VERIFY_ON_OPEN = Setting("VBO_VERIFY_ON_OPEN", "hash a copy's file at its first open")
CRASH_AT = Setting("VBO_CRASH_AT", "SIGKILL the process at this named step", hook=True)
BACKOFF_BASE = Setting("VBO_BACKOFF_BASE", "seconds of the first retry wait", hook=True)
PORTABLE = Setting("VBO_PORTABLE", "use the portable file operations everywhere", hook=True)
SETTINGS = (CACHE_DIR, BUCKET_URL, CONNECTIONS, PART_SIZE, PARALLEL_THRESHOLD,
            STREAM_CACHE_MAX, VERIFY_ON_OPEN, CRASH_AT, BACKOFF_BASE, PORTABLE)  # fmt: skip

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, name: str) -> int:
    """The bytes in ``500M``, ``2G``, ``1.5GiB``, ``65536``; else an error naming ``name``.

    K, M, G and T are powers of 1024.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise VboError(f"{name}={text!r}: not a size such as 500M or 2G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def local_dir(path: str | os.PathLike) -> Path:
    """A directory as the package records and compares it: user expanded, absolute.

    ``..`` is folded but symlinks are kept, so a lab's ``/lab/vbo-cache`` link names the
    same place on every machine that mounts it.
    """
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def cache_dir(recorded: str | os.PathLike | None = None) -> Path:
    """The cache root: ``VBO_CACHE_DIR``, else ``recorded``, else the user cache directory.

    Parameters
    ----------
    recorded : str or path, optional
        The ``--cache-dir`` recorded when the catalog was built.
    """
    chosen = CACHE_DIR.text() or recorded
    if not chosen:
        import platformdirs

        chosen = platformdirs.user_cache_dir("intake-vbo")
    return local_dir(chosen)


def bucket_url() -> str | None:
    """``VBO_BUCKET_URL``: a mirror that wins over the URL a build recorded."""
    return BUCKET_URL.text()


def connections() -> int | None:
    """``VBO_CONNECTIONS``: connections per large file (None: the default)."""
    text = CONNECTIONS.text()
    if text is not None and not text.isdigit():
        raise VboError(f"{CONNECTIONS.name}={text!r}: not a whole number of connections")
    return None if text is None else int(text)


def part_size() -> int | None:
    """``VBO_PART_SIZE``: bytes per part of a large download (None: the default)."""
    return _size(PART_SIZE)


def parallel_threshold() -> int | None:
    """``VBO_PARALLEL_THRESHOLD``: files larger than this come in parts (None: the default)."""
    return _size(PARALLEL_THRESHOLD)


def stream_cache_max() -> int | None:
    """``VBO_STREAM_CACHE_MAX``: the block store's cap in bytes (None: no cap)."""
    return _size(STREAM_CACHE_MAX)


def verify_on_open() -> bool:
    """``VBO_VERIFY_ON_OPEN``: hash a file of a copy at its first open (remembered after)."""
    return _flag(VERIFY_ON_OPEN)


def crash_at() -> str | None:
    """``VBO_CRASH_AT``: the crash point to die at (tests only)."""
    return CRASH_AT.text()


def backoff_base() -> float | None:
    """``VBO_BACKOFF_BASE``: the retry policy's base wait in seconds (tests only)."""
    text = BACKOFF_BASE.text()
    try:
        return None if text is None else float(text)
    except ValueError:
        raise VboError(f"{BACKOFF_BASE.name}={text!r}: not a number of seconds") from None


def portable() -> bool:
    """``VBO_PORTABLE``: take the portable file operations even where POSIX has faster ones."""
    return _flag(PORTABLE)


def _flag(setting: Setting) -> bool:
    return (setting.text() or "0").lower() not in ("0", "false", "no")


def _size(setting: Setting) -> int | None:
    text = setting.text()
    return None if text is None else parse_size(text, setting.name)

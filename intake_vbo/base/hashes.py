"""The BLAKE2b digest rule: what a manifest's ``file_hash`` and a cache entry's name are.

A release names every file by ``hashlib.blake2b(data).hexdigest()``: 128 lowercase hex
characters. The manifest check, the cache's paths and ``verify`` all hold to this one rule.

>>> is_file_hash("0" * 128), is_file_hash("0" * 127)
(True, False)
"""

from __future__ import annotations

import re

from .errors import VboError

HEX_LENGTH = 128  # hex characters of a 64-byte BLAKE2b digest
FILE_HASH = re.compile(rf"[0-9a-f]{{{HEX_LENGTH}}}")


def is_file_hash(text: object) -> bool:
    """Whether ``text`` is a BLAKE2b hex digest as a manifest writes one."""
    return isinstance(text, str) and FILE_HASH.fullmatch(text) is not None


def check_file_hash(value: object) -> str:
    """``value`` if it is a BLAKE2b hex digest, else a one-line `VboError`."""
    if not is_file_hash(value):
        raise VboError(
            f"not a BLAKE2b hex digest ({HEX_LENGTH} lowercase hex): {str(value)[:80]!r}"
        )
    return value  # type: ignore[return-value]


def split_name(name: str) -> tuple[str, str]:
    """A cache file name ``<digest><suffix>`` as ``(digest, suffix)`` (no check made)."""
    return name[:HEX_LENGTH], name[HEX_LENGTH:]

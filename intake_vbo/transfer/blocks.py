"""The on-disk block store behind streamed reads: fixed-size blocks of remote files.

Layout under the cache root (see :mod:`intake_vbo.transfer.store` for the rest)::

    <root>/blocks/<key>/meta.json                         size and ETag of the object
    <root>/blocks/<key>/<offset>.<length>.<digest>.blk    one block of its bytes
    <root>/blocks/<key>/.tmp.<pid>.<random>               a block being written

``<key>`` is ``h-<the first 40 hex of the file's BLAKE2b>`` when a catalog names the
file's hash (any URL serving that content shares the blocks), else ``u-<digest>`` of the
URL's path and ``versionId`` (an unversioned URL adds its ETag, so new content gets new
blocks). 160 bits tell contents apart as well as the whole digest would here, and keep a
block's path well under Windows' 260 characters below the user cache directory.

Each block file is self-describing: its name holds its offset, its length and the
BLAKE2b-128 of its bytes, so every read checks the block it serves and ``verify``
needs nothing else. A block is written to a temporary file in its entry's folder and
renamed into place: readers in any process see a whole block or none (no fsync: a
block torn by a power cut fails its digest and is fetched again). Blocks are
immutable and keyed by content, so writers of the same block in two processes race
harmlessly. Their modification time is their last use: ``VBO_STREAM_CACHE_MAX``
(bytes, with K/M/G/T suffixes) caps the store, least recently used blocks evicted.
Users of a lab share the store: a block another user wrote is marked used with the
kernel's "now" (setting explicit times takes its ownership; "now" only write access).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from ..base import fileops
from ..base.crash import crash_point
from ..base.errors import VboError
from ..base.settings import local_dir, stream_cache_max

BLOCKS = "blocks"  # the store's folder under the cache root
META = "meta.json"
TMP = ".tmp."
BLOCK_NAME = re.compile(r"(\d+)\.(\d+)\.([0-9a-f]{32})\.blk")
KEY_HEX = 40  # hex characters of a store key's digest
KEY = re.compile(rf"[hu]-[0-9a-f]{{{KEY_HEX}}}")
STALE_TMP = 3600.0  # seconds after which a temporary block is a crash's leftover


def block_digest(data: bytes) -> str:
    """The digest a block file is named for: BLAKE2b-128 of its bytes, hex."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def block_intact(name: str, data: bytes) -> bool:
    """Whether ``data`` is what the block file ``name`` says it holds (length and digest)."""
    match = BLOCK_NAME.fullmatch(name)
    return bool(match) and len(data) == int(match.group(2)) and block_digest(data) == match.group(3)


def entry_key(path: str, version_id: str | None, file_hash: str | None, etag=None) -> str:
    """The store key of a remote file: by its BLAKE2b when known, else by its URL.

    Parameters
    ----------
    path : str
        The URL's path (the object key), host and query left out.
    version_id : str or None
        The URL's ``versionId``.
    file_hash : str or None
        The file's BLAKE2b (128 hex), as a manifest names it.
    etag : str, optional
        The object's ETag: part of the key of an unversioned URL, whose content may change.
    """
    if file_hash:
        return f"h-{file_hash[:KEY_HEX]}"
    pinned = f"{path}?versionId={version_id}" if version_id else f"{path}#etag={etag}"
    return "u-" + hashlib.blake2b(pinned.encode(), digest_size=KEY_HEX // 2).hexdigest()


class BlockStore:
    """The block store under a cache root, shared by every process using that root.

    Parameters
    ----------
    root : str or path
        The cache root; blocks live in ``<root>/blocks``.
    cap : int, optional
        Bytes the store may hold; default ``VBO_STREAM_CACHE_MAX`` (None: no cap).
    """

    def __init__(self, root: str | os.PathLike, cap: int | None = None):
        self.cache_root = local_dir(root)
        self.root = self.cache_root / BLOCKS
        self.cap = stream_cache_max() if cap is None else cap
        self._written = 0  # bytes written since the last look at the total

    def entry(self, key: str) -> Entry:
        """The entry of one remote file (created on first write)."""
        if not KEY.fullmatch(key):
            raise VboError(f"not a block store key: {key[:80]!r}")
        return Entry(self, self.root / key)

    def wrote(self, nbytes: int) -> None:
        """Count bytes written; past a slice of the cap, evict down to the cap."""
        self._written += nbytes
        if self.cap is not None and self._written >= max(1, min(self.cap // 8, 64 << 20)):
            self.evict()

    def evict(self) -> list[Path]:
        """Delete least recently used blocks until the store fits its cap; return them."""
        self._written = 0
        if self.cap is None:
            return []
        found = []
        for path in self.block_files():
            try:
                info = path.stat()
            except FileNotFoundError:  # evicted meanwhile by another process
                continue
            found.append((info.st_mtime_ns, str(path), info.st_size))
        total, removed = sum(size for *_, size in found), []
        for _, name, size in sorted(found):
            if total <= self.cap:
                break
            fileops.remove(name)
            removed.append(Path(name))
            total -= size
        return removed

    def block_files(self) -> Iterator[Path]:
        """Every block file in the store (whatever its state)."""
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                for path in sorted(entry.iterdir()):
                    if BLOCK_NAME.fullmatch(path.name):
                        yield path


class Entry:
    """The blocks of one remote file, and what is known of it (size, ETag)."""

    def __init__(self, store: BlockStore, folder: Path):
        self.store, self.folder = store, folder
        self._names: dict[int, str] = {}  # offset -> block file name, as last seen
        self._touched: set[int] = set()
        self.rescan()

    def rescan(self) -> None:
        """Look again at which blocks exist (other processes add and evict them)."""
        names = {}
        try:
            listing = os.listdir(self.folder)
        except FileNotFoundError:
            listing = []
        for name in listing:
            match = BLOCK_NAME.fullmatch(name)
            if match:
                names[int(match.group(1))] = name
        self._names = names

    def meta(self) -> dict | None:
        """``{"size": ..., "etag": ...}`` as first recorded, or None."""
        try:
            doc = json.loads((self.folder / META).read_text("utf-8"))
            if isinstance(doc.get("size"), int) and isinstance(doc.get("etag"), str):
                return doc
        except (OSError, ValueError, AttributeError):
            pass
        return None  # missing or damaged: learnt again from the next response

    def save_meta(self, size: int, etag: str) -> None:
        """Record the object's size and ETag (atomically; the first writer's stays)."""
        if self.meta() is None:
            self._atomic_write(META, json.dumps({"size": size, "etag": etag}).encode())

    def has(self, offset: int, length: int) -> bool:
        """Whether the block at ``offset`` of ``length`` bytes is (as last seen) stored."""
        name = self._names.get(offset)
        return name is not None and int(name.split(".")[1]) == length

    def read(self, offset: int, length: int) -> bytes | None:
        """The block's bytes, checked against its digest; None if missing or damaged."""
        name = self._names.get(offset)
        if name is None:
            return None
        path = self.folder / name
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:  # evicted by another process
            self._names.pop(offset, None)
            return None
        if len(data) != length or not block_intact(name, data):
            self._names.pop(offset, None)  # never served; fetched again and replaced
            fileops.remove(path)
            return None
        if offset not in self._touched:  # its last use, for the LRU cap
            self._touched.add(offset)
            _touch(path)
        return data

    def write(self, offset: int, data: bytes) -> None:
        """Store one block: a temporary file renamed into place."""
        name = f"{offset}.{len(data)}.{block_digest(data)}.blk"
        self._atomic_write(name, data, crash_test=True)
        self._names[offset] = name
        self._touched.add(offset)
        crash_point("blocks:block-stored")
        self.store.wrote(len(data))

    def _atomic_write(self, name: str, data: bytes, crash_test: bool = False) -> None:
        fileops.makedirs(self.folder)
        tmp = self.folder / f"{TMP}{os.getpid()}.{secrets.token_hex(6)}"
        try:
            with open(tmp, "wb") as f:
                f.write(data[: len(data) // 2])
                if crash_test:
                    crash_point("blocks:half-written")
                f.write(data[len(data) // 2 :])
            fileops.replace(tmp, self.folder / name)
        except BaseException:
            fileops.remove(tmp)
            raise
        _touch(self.folder / name)

    def covered(self, size: int, block_size: int) -> bool:
        """Whether every block of a ``size``-byte file is stored (as last seen)."""
        return all(
            self.has(offset, min(block_size, size - offset))
            for offset in range(0, size, block_size)
        )

    def chunks(self, size: int, block_size: int) -> Iterator[bytes]:
        """The file's bytes block by block, each checked; VboError if one is missing."""
        for offset in range(0, size, block_size):
            data = self.read(offset, min(block_size, size - offset))
            if data is None:
                raise VboError(f"{self.folder}: block at {offset} went missing while assembling")
            yield data

    def promote(self, store, file_hash: str, size: int, block_size: int, what: str) -> bool:
        """Assemble a fully covered file, verify it and install it in ``store``.

        Returns True once the file is in the verified cache (by us or another
        process); its blocks are then deleted, as later opens use the local file.
        A wrong digest drops the blocks (content unlike the manifest's is never kept)
        and raises a one-line VboError.
        """
        crash_point("blocks:before-promote")
        try:
            store.install(file_hash, self.chunks(size, block_size), what)
        except VboError:
            if self.covered(size, block_size):  # a wrong file, not a block evicted meanwhile
                self.drop()
                raise
            return False
        self.drop()
        return True

    def drop(self) -> None:
        """Delete this entry's blocks (kept: the meta file, tiny)."""
        for name in list(self._names.values()):
            fileops.remove(self.folder / name)
        self._names.clear()


def check(root: str | os.PathLike, repair: bool = False) -> tuple[list, list, list]:
    """Re-hash every block under a cache root: ``(ok, damaged, stray)`` lists of paths.

    ``repair`` deletes the damaged blocks (a later read fetches them again). Stray
    files are what is neither a block, a temporary block nor an entry's meta file;
    temporary blocks older than an hour (a crash's leftovers) are deleted with
    ``repair`` and otherwise ignored.
    """
    top = Path(root) / BLOCKS
    ok, damaged, stray = [], [], []
    if not top.is_dir():
        return ok, damaged, stray
    for entry in sorted(top.iterdir()):
        if not (entry.is_dir() and KEY.fullmatch(entry.name)) or entry.is_symlink():
            stray.append(entry)
            continue
        for path in sorted(entry.iterdir()):
            if BLOCK_NAME.fullmatch(path.name) and path.is_file():
                (ok if _intact(path) else damaged).append(path)
            elif path.name.startswith(TMP) and path.is_file():
                if repair and time.time() - path.stat().st_mtime > STALE_TMP:
                    fileops.remove(path)
            elif path.name != META or not path.is_file():
                stray.append(path)
    for path in damaged if repair else []:
        fileops.remove(path)
    return ok, damaged, stray


def _intact(path: Path) -> bool:
    try:
        return block_intact(path.name, path.read_bytes())
    except OSError:
        return False


def _touch(path: Path) -> None:
    """Mark a block used now, for the LRU cap.

    One's own block gets the clock's full resolution (LRU order across blocks); another
    user's gets the kernel's "now" (explicit times need ownership, "now" only write
    access); a block one cannot write keeps its time (its order is then a little off).
    """
    now = time.time_ns()
    with contextlib.suppress(FileNotFoundError):  # evicted meanwhile
        try:
            os.utime(path, ns=(now, now))
        except PermissionError:
            with contextlib.suppress(PermissionError):
                os.utime(path)

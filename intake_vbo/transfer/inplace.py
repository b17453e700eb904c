"""Files opened in place on a read-only copy of the release: checked cheaply, never written.

A copy of the bucket (a mounted bucket, a Code Ocean data asset, a lab mirror, an
AllenSDK cache) is read where it lies; its files are named by ``file://`` URLs. Opening
one costs a look at its HDF5 superblock: the end-of-file address recorded there
against the file's size, which catches a truncated copy without reading the file.
Hashing a multi-gigabyte file on a network mount before a first look would take
minutes, so BLAKE2b is checked only when asked (``VBO_VERIFY_ON_OPEN``, or
``intake-vbo verify``); the result is remembered under the cache root, keyed by the
file's path, size and modification time, so it is paid once. Nothing here writes
anywhere but the cache root.

>>> url_path(file_url("/mnt/vbo/a b.nwb"))
PosixPath('/mnt/vbo/a b.nwb')
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ..base import fileops
from ..base.errors import VboError
from ..base.settings import verify_on_open

FILE_SCHEME = "file"
RECORDS = "inplace"  # <cache root>/inplace/<digest of the path>.json: hashes already checked
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_SUPERBLOCK_AT = (0, 512, 1024, 2048, 4096)  # where HDF5 may put it (after a user block)


def is_file_url(url: str) -> bool:
    """Whether ``url`` names a file on a local copy (``file://...``)."""
    return urlsplit(url).scheme == FILE_SCHEME


def file_url(path: str | os.PathLike) -> str:
    """The ``file://`` URL of an absolute path (quoted: spaces, non-ASCII)."""
    return "file://" + quote(os.fspath(path))


def url_path(url: str) -> Path:
    """The path a ``file://`` URL names (any query is ignored)."""
    return Path(unquote(urlsplit(url).path))


def open_in_place(path: str | os.PathLike, file_hash: str | None = None,
                  records: str | os.PathLike | None = None) -> Path:  # fmt: skip
    """The path of a copy's file, checked: present, whole, and (if asked) its BLAKE2b.

    Parameters
    ----------
    path : str or path
        The file on the copy (a ``file://`` URL or a path).
    file_hash : str, optional
        The BLAKE2b the manifest gives it, checked when ``VBO_VERIFY_ON_OPEN`` is set.
    records : str or path, optional
        The cache root, under which checked hashes are remembered.

    Raises
    ------
    VboError
        The file is missing, is not HDF5, is shorter than its superblock says, or
        (when verified) does not hash to ``file_hash``.
    """
    path = url_path(path) if isinstance(path, str) and is_file_url(path) else Path(path)
    check_whole(path)
    if file_hash and verify_on_open():
        verify_in_place(path, file_hash, records)
    return path


def check_whole(path: Path) -> None:
    """Refuse a missing or truncated file: its size against the superblock's end of file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            end = hdf5_end(f)
    except FileNotFoundError:
        raise VboError(f"{path}: no such file on the copy") from None
    except OSError as exc:
        raise VboError(f"{path}: cannot read it on the copy: {exc}") from None
    if end is None:
        raise VboError(f"{path}: not an HDF5 file (no superblock signature)")
    if size < end:
        raise VboError(
            f"{path}: truncated copy: {size} bytes, its HDF5 superblock says {end}; "
            "copy it again from the bucket"
        )


def hdf5_end(f) -> int | None:
    """The absolute end-of-file address an HDF5 superblock records (None: no superblock)."""
    for at in _SUPERBLOCK_AT:
        f.seek(at)
        head = f.read(64)
        if head[:8] != _SIGNATURE:
            continue
        version = head[8]
        if version in (0, 1):  # fields, then 4 addresses: base, free space, end, driver
            sizes, first = head[13], 24 if version == 0 else 28
        else:  # 2, 3: sizes, flags, then base, extension, end, root
            sizes, first = head[9], 12
        fmt = {4: "<I", 8: "<Q"}.get(sizes)
        if fmt is None or len(head) < first + 3 * sizes:
            return None
        base = struct.unpack_from(fmt, head, first)[0]
        end = struct.unpack_from(fmt, head, first + 2 * sizes)[0]
        return base + end
    return None


def verify_in_place(path: Path, file_hash: str, records: str | os.PathLike | None) -> None:
    """Hash ``path`` once (remembered by path, size and mtime) and refuse a mismatch."""
    info = path.stat()
    key = {"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    record = _record_path(records, path) if records else None
    if record is not None and _remembered(record) == dict(key, blake2b=file_hash):
        return
    from .download import hash_file  # requests and threads: only when hashing

    got = hash_file(path)
    if got != file_hash:
        raise VboError(
            f"{path}: content on the copy does not match the manifest: "
            f"blake2b {got[:16]}..., expected {file_hash[:16]}..."
        )
    if record is not None:
        _remember(record, dict(key, blake2b=got))


@dataclass
class CopyReport:
    """What :func:`verify_copy` found on a copy (paths): ok, damaged, missing."""

    ok: list = field(default_factory=list)
    damaged: list = field(default_factory=list)
    missing: list = field(default_factory=list)


def verify_copy(expected: dict[Path, str]) -> CopyReport:
    """Hash each file of a copy against the BLAKE2b it should have; read only, never write."""
    report = CopyReport()
    present = [path for path in expected if path.is_file()]
    report.missing = [path for path in expected if path not in set(present)]
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        hashes = list(pool.map(_hash_or_none, present))
    for path, got in zip(present, hashes, strict=True):
        (report.ok if got == expected[path] else report.damaged).append(path)
    return report


def _hash_or_none(path: Path) -> str | None:
    from .download import hash_file

    try:
        return hash_file(path)
    except OSError:
        return None


def _record_path(records: str | os.PathLike, path: Path) -> Path:
    name = hashlib.blake2b(str(path).encode(), digest_size=16).hexdigest()
    return Path(records) / RECORDS / f"{name}.json"


def _remembered(record: Path) -> dict | None:
    try:
        return json.loads(record.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _remember(record: Path, doc: dict) -> None:
    """Write the record atomically; a cache we cannot write only costs a hash next time."""
    try:
        fileops.makedirs(record.parent)
        tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc), "utf-8")
        fileops.replace(tmp, record)
    except OSError:
        pass

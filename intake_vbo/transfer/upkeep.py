"""Looking after a cache: verify (and repair) what is in it, adopt an existing one.

``verify`` re-hashes every entry against the digest it is named for; ``adopt`` takes
the files a catalog wants from a directory a user already has (an AllenSDK cache),
so a lab that holds the data keeps it instead of downloading it again.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..base import fileops
from ..base.errors import VboError
from ..base.hashes import is_file_hash, split_name
from ..base.progress import progress_iter
from .blocks import BLOCKS
from .blocks import check as check_blocks
from .cache import Cache
from .download import hash_file
from .inplace import RECORDS
from .store import SUFFIX, WORK_FILES, valid_suffix


@dataclass
class VerifyReport:
    """What :func:`verify` found (cache paths): ok, damaged, foreign, repaired."""

    ok: list = field(default_factory=list)
    damaged: list = field(default_factory=list)
    foreign: list = field(default_factory=list)
    repaired: list = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # repairs that failed


def verify(cache: Cache, urls: dict[str, str] | None = None, repair: bool = False,
           progress: bool | None = None) -> VerifyReport:  # fmt: skip
    """Re-hash every cached file and report those whose content no longer fits their name.

    Parameters
    ----------
    cache : Cache
        The cache to check.
    urls : dict, optional
        ``file_hash -> url``: where to get damaged files again.
    repair : bool
        Delete every damaged file (a wrong file must never be served) and fetch
        again those with a URL. Foreign files (anything that is not a cache entry)
        are reported, never touched.
    progress : bool, optional
        Show a bar over the files hashed (default: in a notebook or on a terminal).

    Notes
    -----
    The blocks of streamed files (``<root>/blocks``) are checked too, each against
    the digest in its name; ``repair`` deletes a damaged block (counted repaired: a
    later read fetches it again).
    """
    with fileops.shared(cache.root):  # a cache that is not the group's: say so
        return _verify(cache, urls or {}, repair, progress)


def _verify(
    cache: Cache, urls: dict[str, str], repair: bool, progress: bool | None
) -> VerifyReport:
    report, entries = VerifyReport(), []
    for path in _walk(cache.root):
        if path.relative_to(cache.root).parts[0] in (BLOCKS, RECORDS):
            continue  # blocks are checked below; records of a copy's hashes are no entries
        digest = _entry_digest(cache.root, path)
        if digest:
            entries.append((path, digest))
        elif not _work_file(cache.root, path):
            report.foreign.append(path)
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        hashing = pool.map(_hash_or_reason, [path for path, _ in entries])
        hashes = list(progress_iter(hashing, "verify", "file", progress, total=len(entries)))
    for (path, digest), got in zip(entries, hashes, strict=True):
        (report.ok if got == digest else report.damaged).append(path)
    for path in report.damaged if repair else []:
        digest, suffix = split_name(path.name)
        with cache.lock(digest):
            if path.is_file() and _hash_or_reason(path) != digest:  # not mended meanwhile
                fileops.remove(path)
        if urls.get(digest):
            try:
                cache.fetch(urls[digest], digest, suffix)
                report.repaired.append(path)
            except VboError as exc:
                report.failed.append((path, str(exc)))
    ok, damaged, stray = check_blocks(cache.root, repair)
    report.ok += ok
    report.damaged += damaged
    report.foreign += stray
    report.repaired += damaged if repair else []
    return report


@dataclass
class AdoptReport:
    """What :func:`adopt` did with the files it hashed (paths in the adopted directory)."""

    adopted: list = field(default_factory=list)  # now in the cache
    present: list = field(default_factory=list)  # their content was cached already
    unknown: list = field(default_factory=list)  # not among the known digests


def adopt(cache: Cache, path: str | os.PathLike, known: dict[str, str],
          progress: bool | None = None) -> AdoptReport:  # fmt: skip
    """Take the files the cache wants from an existing directory, without downloading.

    Walks ``path`` (an AllenSDK cache, say, symlinks and all), hashes each regular
    file whose name ends with a wanted suffix (each content once, however many
    links name it), and hardlinks (same filesystem) or copies those whose digest is
    in ``known`` into the cache. The user's files are never moved or changed; a
    hardlinked file shares its source's inode and mode, and :func:`verify` notices
    if the source is edited later.

    Parameters
    ----------
    cache : Cache
        The cache to fill.
    path : str or path
        The directory to walk.
    known : dict
        ``file_hash -> suffix`` of the wanted files (e.g. every NWB of a manifest).
    progress : bool, optional
        Show a bar over the files looked at (default: in a notebook or on a terminal).
    """
    top = Path(path).expanduser()
    if not top.is_dir():
        raise VboError(f"{top}: not a directory to adopt files from")
    wanted = {digest: valid_suffix(suffix) for digest, suffix in known.items()}
    suffixes, report, seen = tuple(set(wanted.values())), AdoptReport(), set()
    files = [f for f in sorted(_walk(top)) if f.name.lower().endswith(suffixes)]
    for file in progress_iter(files, "adopt", "file", progress):  # each file hashed whole
        try:
            info = file.stat()  # follows a symlink to the file it names
        except OSError:  # a dangling link
            continue
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        digest = hash_file(file)
        if digest not in wanted:
            report.unknown.append(file)
            continue
        with fileops.shared(cache.root):
            taken = cache.adopt_file(file.resolve(), digest, wanted[digest])
        (report.adopted if taken else report.present).append(file)
    return report


def _walk(top: Path):
    """Every file and symlink below ``top``; links to directories are listed, not followed."""
    for where, dirs, names in os.walk(top):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(where, d))]:
            yield Path(where) / name


def _entry_digest(root: Path, path: Path) -> str | None:
    """The digest a verified cache file is named for (``blake2b/<h[:2]>/<h><suffix>``)."""
    parts = path.relative_to(root).parts
    if path.is_symlink() or not path.is_file() or len(parts) != 3:
        return None
    digest, ending = split_name(parts[2])
    if parts[0] == "blake2b" and parts[1] == digest[:2] and is_file_hash(digest):
        return digest if SUFFIX.fullmatch(ending) else None
    return None


def _work_file(root: Path, path: Path) -> bool:
    """Whether ``path`` is a download in progress or a lock: the cache's, not a user's."""
    parts = path.relative_to(root).parts
    if path.is_symlink() or not path.is_file() or len(parts) != 2:
        return False
    digest, ending = split_name(parts[1])
    return is_file_hash(digest) and ending in WORK_FILES.get(parts[0], ())


def _hash_or_reason(path: Path) -> str:
    try:
        return hash_file(path)
    except OSError as exc:
        return f"unreadable: {exc}"

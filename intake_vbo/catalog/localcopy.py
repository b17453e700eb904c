"""A copy of the release on disk, read in place and never written.

Two layouts, told apart by what the directory holds:

- ``bucket``: the bucket's own keys under the directory (a mounted bucket, a Code
  Ocean data asset, a lab mirror, a course drive), i.e.
  ``visual-behavior-ophys/manifests/...``, ``project_metadata/``,
  ``behavior_sessions/``, ``behavior_ophys_experiments/``. Such a copy holds one
  object per key: the latest upload. AllenSDK's ``from_local_cache(use_static_cache=True)``.
- ``allensdk``: an AllenSDK download cache: the manifests at the top, each version's
  files under ``visual-behavior-ophys-<version>/`` (AllenSDK's ``from_local_cache()``).

A copy's ``versionId`` means nothing (one object per key): a file is identified by
the BLAKE2b its manifest gives, and a key of an older version that now holds another
upload is refused, not served. The catalog of a copy lives elsewhere
(:func:`catalog_home`), under a name derived from the copy's path.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

from ..base.errors import VboError
from .manifest import parse_manifest
from .release import (
    DEFAULT_BUCKET_URL,
    MANIFEST_NAME,
    MANIFEST_PREFIX,
    PROJECT_NAME,
    PROJECT_PREFIX,
    ManifestObject,
    manifest_key,
    manifest_name,
    version_key,
)

BUCKET_LAYOUT = "bucket"
ALLENSDK_LAYOUT = "allensdk"
HOW_TO_GET = (
    f"it is in the bucket: a catalog built from {DEFAULT_BUCKET_URL} "
    "(intake-vbo build, or VisualBehaviorOphysProjectCache.from_s3_cache) downloads it"
)


def layout(root: Path) -> str:
    """The layout of the copy at ``root``: :data:`BUCKET_LAYOUT` or :data:`ALLENSDK_LAYOUT`.

    Raises
    ------
    VboError
        ``root`` is not a directory, or holds neither layout.
    """
    return _layout(str(root))


@lru_cache(maxsize=64)
def _layout(root: str) -> str:
    top = Path(root)
    if (top / MANIFEST_PREFIX).is_dir():
        return BUCKET_LAYOUT
    try:
        names = os.listdir(top)
    except OSError as exc:
        raise VboError(f"{top}: cannot read the copy of the release: {exc.strerror}") from None
    if any(MANIFEST_NAME.fullmatch(n) for n in names):
        return ALLENSDK_LAYOUT
    raise VboError(
        f"{top}: not a copy of the release: neither {MANIFEST_PREFIX} (the bucket's layout) "
        f"nor {manifest_name('X.Y.Z')} files (an AllenSDK cache)"
    )


def manifest_path(root: Path, version: str) -> Path:
    """Where the copy keeps the manifest of ``version``."""
    if layout(root) == BUCKET_LAYOUT:
        return root / manifest_key(version)
    return root / manifest_name(version)


def key_path(root: Path, key: str, version: str) -> Path:
    """Where the copy keeps the object ``key`` of release ``version``."""
    if layout(root) == BUCKET_LAYOUT:
        return root / key
    return root / f"{PROJECT_NAME}-{version}" / key[len(PROJECT_PREFIX) :]


def list_manifests(root: Path) -> dict[str, ManifestObject]:
    """The copy's manifests, sorted by version; each one's ETag is its size and mtime."""
    folder = manifest_path(root, "0.0.0").parent
    found = {}
    for name in os.listdir(folder):
        match = MANIFEST_NAME.fullmatch(name)
        if match:
            info = (folder / name).stat()
            etag = f"{info.st_size:x}-{info.st_mtime_ns:x}"
            found[match.group(1)] = ManifestObject(match.group(1), str(folder / name), etag)
    return dict(sorted(found.items(), key=lambda item: version_key(item[0])))


def read_manifest(root: Path, version: str) -> bytes:
    """The bytes of the copy's manifest of ``version``."""
    return _read(manifest_path(root, version), f"manifest v{version}")


def read_verified(root: Path, key: str, version: str, file_hash: str, what: str) -> bytes:
    """The copy's ``key`` of ``version``, refused unless it hashes to ``file_hash``."""
    path = key_path(root, key, version)
    data = _read(path, what)
    digest = hashlib.blake2b(data).hexdigest()
    if digest != file_hash:
        why = (
            "a copy in the bucket's layout holds only the latest upload of each key, "
            "and this one changed since"
            if layout(root) == BUCKET_LAYOUT
            else "the AllenSDK cache holds another file there"
        )
        raise VboError(
            f"{what}: {path} is not the file release {version} lists (blake2b "
            f"{digest[:16]}..., manifest says {file_hash[:16]}...): {why}; release "
            f"{version} cannot load from this copy"
        )
    return data


def data_path(root: Path, key: str, version: str, file_hash: str) -> Path:
    """The path of a data file on the copy, refused when the copy holds other content.

    Cheap: a ``stat``, and for an older version in the bucket's layout a look at
    which upload the newest manifest listing ``key`` names (no file is hashed).

    Raises
    ------
    VboError
        The file is missing (naming it and how to get it), or its key now holds
        another release's upload.
    """
    path = key_path(root, key, version)
    if not path.exists():
        raise VboError(
            f"{path}: not on the copy at {root} ({key}, release {version}); {HOW_TO_GET}"
        )
    # The copy's newest manifest names what its keys hold: only older versions need a look.
    if layout(root) == BUCKET_LAYOUT and version != list(list_manifests(root))[-1]:
        held = current_hashes(root).get(key)
        if held is not None and held[1] != file_hash:
            raise VboError(
                f"{path}: the copy holds the upload of release {held[0]}, not the one release "
                f"{version} lists (a copy holds only the latest upload of each key); {HOW_TO_GET}"
            )
    return path


def current_hashes(root: Path) -> dict[str, tuple[str, str]]:
    """key -> (version, file_hash) of the newest manifest on the copy that lists it."""
    listing = list_manifests(root)
    return _current(str(root), tuple((v, m.etag) for v, m in listing.items()))


@lru_cache(maxsize=8)
def _current(root: str, versions: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, str]]:
    held: dict[str, tuple[str, str]] = {}
    for version, _ in versions:  # oldest first: a newer manifest wins
        where = str(manifest_path(Path(root), version))
        manifest = parse_manifest(read_manifest(Path(root), version), where, version)
        for entry in [*manifest.data_files, *manifest.metadata_files]:
            held[entry.key] = (version, entry.file_hash)
    return held


def catalog_home(root: Path, base: Path) -> Path:
    """The directory under ``base`` for the catalog and records of the copy at ``root``.

    Named from the copy's real path (a readable tail and a digest of the whole), so
    two copies never share a catalog and one copy always finds its own again.
    """
    real = os.path.realpath(root)
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(Path(real).parts[-2:])).strip("-")
    digest = hashlib.blake2b(real.encode(), digest_size=8).hexdigest()
    return base / "copies" / f"{tail[:40] or 'root'}-{digest}"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VboError(f"{what}: {path} is not on the copy") from None
    except OSError as exc:
        raise VboError(f"{what}: cannot read {path}: {exc.strerror}") from None

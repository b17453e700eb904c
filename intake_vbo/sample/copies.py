"""Copies of the sample release on disk, as users hold the real one (tests, benchmarks).

- :func:`write_bucket_copy`: the bucket's layout, as a mounted bucket or a Code Ocean
  data asset holds it: every manifest, and the latest upload of each key.
- :func:`write_allensdk_copy`: an AllenSDK download cache: the manifests at the top,
  each version's files under ``visual-behavior-ophys-<version>/`` (a content already
  downloaded for an earlier version is a symlink to it, as AllenSDK makes it), and
  ``_manifest_last_used.txt``.

The manifests are those :mod:`intake_vbo.sample.s3` would publish, with version ids
made up once per content of a key (a copy has no S3 to assign them), so that a file
unchanged between versions keeps its id, as on S3.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..catalog.release import (
    PROJECT_NAME,
    PROJECT_PREFIX,
    manifest_key,
    manifest_name,
    version_key,
)
from .release import generated_versions, load_layout, manifest_json, object_path

LAST_USED = "_manifest_last_used.txt"  # AllenSDK's record of the manifest last loaded


def version_id(key: str, digest: str) -> str:
    """A made-up S3 version id, the same for the same content of the same key."""
    return hashlib.blake2b(f"{key}\0{digest}".encode(), digest_size=16).hexdigest()


def _manifests(release: Path, versions: list[str]) -> dict[str, tuple[dict, bytes]]:
    """Each version's layout and manifest bytes."""
    found = {}
    for version in versions:
        layout = load_layout(release, version)
        ids = {k: version_id(k, e["blake2b"]) for k, e in layout["objects"].items()}
        found[version] = (layout, manifest_json(layout, ids))
    return found


def _chosen(release: Path, versions) -> list[str]:
    every = generated_versions(release)
    return sorted(every if versions is None else versions, key=version_key)


def write_bucket_copy(release: Path, dest: Path, versions=None, omit=()) -> Path:
    """Write the bucket's layout of ``versions`` (default all) into ``dest``.

    Parameters
    ----------
    release : Path
        A generated sample release.
    dest : Path
        The copy's directory (created; must not hold another copy).
    versions : sequence of str, optional
        Versions whose manifests the copy holds; each key holds the newest of them
        that lists it.
    omit : iterable of str
        Keys left out, as from a partial copy.

    Returns
    -------
    Path
        ``dest``.
    """
    manifests = _manifests(release, _chosen(release, versions))
    latest: dict[str, str] = {}
    for version, (layout, body) in manifests.items():  # oldest first: newer uploads win
        _write(dest / manifest_key(version), body)
        latest.update({k: e["blake2b"] for k, e in layout["objects"].items()})
    for key, digest in latest.items():
        if key not in set(omit):
            _copy(object_path(release, digest), dest / key)
    return dest


def write_allensdk_copy(release: Path, dest: Path, versions=None, last_used=None) -> Path:
    """Write an AllenSDK download cache of ``versions`` (default all) into ``dest``.

    Parameters
    ----------
    release : Path
        A generated sample release.
    dest : Path
        The cache directory.
    versions : sequence of str, optional
        The versions downloaded (every file of each).
    last_used : str, optional
        The version ``_manifest_last_used.txt`` names (default the newest written).
    """
    manifests = _manifests(release, _chosen(release, versions))
    downloaded: dict[str, Path] = {}  # digest -> where it was first written
    for version, (layout, body) in manifests.items():
        _write(dest / manifest_name(version), body)
        folder = dest / f"{PROJECT_NAME}-{version}"
        for key, entry in layout["objects"].items():
            target = folder / key[len(PROJECT_PREFIX) :]
            earlier = downloaded.get(entry["blake2b"])
            if earlier is not None and key.endswith(".nwb"):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.path.relpath(earlier, target.parent), target)
            else:
                _copy(object_path(release, entry["blake2b"]), target)
                downloaded.setdefault(entry["blake2b"], target)
    record = {str(p.resolve()): d for d, p in downloaded.items()}
    _write(dest / "_downloaded_data.json", json.dumps(record, indent=2).encode())
    chosen = last_used or list(manifests)[-1]
    _write(dest / LAST_USED, manifest_name(chosen).encode())
    return dest


def _write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)

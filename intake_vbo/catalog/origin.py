"""Where the release is read from: the bucket over HTTP(S), or a copy of it on disk.

A bucket URL is either an ``http(s)://`` S3 endpoint (the public bucket, a mirror, an
S3-compatible server) or a local directory holding a copy of the release (a plain path
or ``file:///...``; see :mod:`intake_vbo.catalog.localcopy` for the layouts). The build
lists and reads manifests and metadata files through this module, and the drivers ask
it where a data file lies: a URL pinned to its ``versionId``, or a ``file://`` URL of
the file on the copy, opened in place.

>>> bucket_url("http://127.0.0.1:9000/vbo")
'http://127.0.0.1:9000/vbo/'
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from ..base import settings
from ..base.errors import VboError
from ..transfer.inplace import file_url, is_file_url, url_path
from . import localcopy, release


def bucket_url(url: str | None = None, recorded: str | None = None) -> str:
    """The bucket URL to use, normalised to end in ``/`` (a copy as ``file:///abs/path/``).

    Parameters
    ----------
    url : str, optional
        Given explicitly (``--bucket-url``): it wins.
    recorded : str, optional
        Recorded by a build; ``VBO_BUCKET_URL`` (a mirror) wins over it, and the
        public bucket is the default.

    Raises
    ------
    VboError
        If the URL is neither http(s) without a query nor a local directory.
    """
    url = url or settings.bucket_url() or recorded or release.DEFAULT_BUCKET_URL
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        if not parts.netloc or parts.query:
            raise VboError(f"bucket URL {url!r}: expected http(s)://host[/bucket]/ with no query")
        return url if url.endswith("/") else url + "/"
    if is_file_url(url):
        if parts.netloc not in ("", "localhost") or parts.query:
            raise VboError(f"bucket URL {url!r}: expected file:///absolute/directory/")
        path = url_path(url)
    elif parts.scheme and len(parts.scheme) > 1:  # a drive letter is no scheme
        raise VboError(f"bucket URL {url!r}: expected http(s)://..., file:///... or a directory")
    else:
        path = Path(os.path.abspath(os.path.expanduser(url)))
    return file_url(str(path).rstrip("/") + "/")


def copy_root(bucket: str) -> Path | None:
    """The directory of a copy named by a normalised bucket URL; None for HTTP(S)."""
    return url_path(bucket) if is_file_url(bucket) else None


def list_manifests(bucket: str) -> dict[str, release.ManifestObject]:
    """The released manifests, by version: listed by S3, or found on the copy."""
    bucket = bucket_url(bucket)
    root = copy_root(bucket)
    return release.list_manifests(bucket) if root is None else localcopy.list_manifests(root)


def fetch_manifest(bucket: str, version: str) -> bytes:
    """The bytes of the manifest of ``version``."""
    root = copy_root(bucket)
    if root is None:
        return release.fetch_manifest(bucket, version)
    return localcopy.read_manifest(root, version)


def fetch_verified(bucket: str, key: str, version: str, version_id: str, file_hash: str,
                   what: str) -> bytes:  # fmt: skip
    """The bytes of ``key`` as release ``version`` lists it, checked against ``file_hash``."""
    root = copy_root(bucket)
    if root is None:
        return release.fetch_verified(bucket, key, version_id, file_hash, what)
    return localcopy.read_verified(root, key, version, file_hash, what)


def locate(bucket: str, key: str, version_id: str, version: str, file_hash: str) -> str:
    """Where a data file is read: its URL at ``version_id``, or its ``file://`` URL on a copy.

    Raises
    ------
    VboError
        On a copy: the file is missing, or its key holds another release's upload.
    """
    root = copy_root(bucket)
    if root is None:
        return release.object_url(bucket, key, version_id)
    return file_url(localcopy.data_path(root, key, version, file_hash))

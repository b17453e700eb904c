"""The bucket: list released manifests, fetch a manifest or a metadata file, build object URLs.

Works against the real public bucket (virtual-host style) and against any S3-compatible
server or mirror in path style, e.g. ``http://127.0.0.1:9000/visual-behavior-ophys-data/``:
every object is fetched as ``<bucket URL><key>?versionId=<version_id>``. What a bucket URL
may be, a copy on disk included, is :mod:`intake_vbo.catalog.origin`'s.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..base.errors import VboError

# The release's layout: the one home of these facts.
BUCKET = "visual-behavior-ophys-data"
REGION = "us-west-2"
DEFAULT_BUCKET_URL = f"https://{BUCKET}.s3.{REGION}.amazonaws.com/"
PROJECT_NAME = "visual-behavior-ophys"
PROJECT_PREFIX = PROJECT_NAME + "/"
MANIFEST_PREFIX = PROJECT_PREFIX + "manifests/"
MANIFEST_FILE = PROJECT_NAME + "_project_manifest_v{version}.json"
MANIFEST_NAME = re.compile(
    re.escape(MANIFEST_FILE).replace(re.escape("{version}"), r"(\d+\.\d+\.\d+)")
)
DATA_FOLDERS = {  # the kinds of data file, and where each kind's files lie
    "behavior_session": "behavior_sessions/behavior_session_{}.nwb",
    "ophys_experiment": "behavior_ophys_experiments/behavior_ophys_experiment_{}.nwb",
}
KINDS = tuple(DATA_FOLDERS)
_S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass(frozen=True)
class ManifestObject:
    """One manifest as the bucket lists it."""

    version: str
    key: str
    etag: str


def object_url(bucket: str, key: str, version_id: str | None = None) -> str:
    """The URL of one object, pinned to ``version_id`` when given."""
    url = bucket + quote(key)
    if version_id:
        url += "?" + urlencode({"versionId": version_id})
    return url


def kind_label(kind: str) -> str:
    """How messages name a kind of file: ``ophys_experiment`` -> ``ophys experiment``."""
    return kind.replace("_", " ")


def id_column(kind: str) -> str:
    """The column of a kind's ids: ``ophys_experiment`` -> ``ophys_experiment_id``."""
    return f"{kind}_id"


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of an ``X.Y.Z`` version string."""
    return tuple(int(part) for part in version.split("."))


def manifest_name(version: str) -> str:
    """The file name of the manifest of ``version``, as AllenSDK names it too."""
    return MANIFEST_FILE.format(version=version)


def manifest_key(version: str) -> str:
    """The bucket key of the manifest of ``version``."""
    return MANIFEST_PREFIX + manifest_name(version)


def metadata_key(name: str) -> str:
    """The bucket key of a metadata table, e.g. ``behavior_session_table``."""
    return f"{PROJECT_PREFIX}project_metadata/{name}.csv"


def data_key(kind: str, ident: int) -> str:
    """The bucket key of the NWB file of a ``behavior_session`` or ``ophys_experiment``."""
    return PROJECT_PREFIX + DATA_FOLDERS[kind].format(ident)


def list_manifests(bucket: str, page_size: int = 1000) -> dict[str, ManifestObject]:
    """List released manifests with ListObjectsV2, following continuation tokens.

    Parameters
    ----------
    bucket : str
        The bucket URL.
    page_size : int
        Keys per listing page (S3 returns at most 1000).

    Returns
    -------
    dict
        Version string -> :class:`ManifestObject`, sorted by version.
    """
    found: dict[str, ManifestObject] = {}
    token = None
    while True:
        query = {"list-type": "2", "prefix": MANIFEST_PREFIX, "max-keys": str(page_size)}
        if token:
            query["continuation-token"] = token
        url = bucket + "?" + urlencode(query)
        body = _get(url, f"manifest listing of {bucket}")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise VboError(
                f"manifest listing of {bucket}: not S3 ListObjectsV2 XML ({exc})"
            ) from None
        for item in root.iter(f"{_S3}Contents"):
            key = item.findtext(f"{_S3}Key", "")
            match = MANIFEST_NAME.fullmatch(key[len(MANIFEST_PREFIX) :])
            if match:
                etag = item.findtext(f"{_S3}ETag", "").strip('"')
                found[match.group(1)] = ManifestObject(match.group(1), key, etag)
        if root.findtext(f"{_S3}IsTruncated", "false") != "true":
            break
        token = root.findtext(f"{_S3}NextContinuationToken")
        if not token:
            break
    return dict(sorted(found.items(), key=lambda item: version_key(item[0])))


def fetch_manifest(bucket: str, version: str) -> bytes:
    """The bytes of the latest upload of the manifest of ``version``."""
    return _get(object_url(bucket, manifest_key(version)), f"manifest v{version}")


def fetch_verified(bucket: str, key: str, version_id: str, file_hash: str, what: str) -> bytes:
    """Fetch ``key`` at ``version_id`` and check its BLAKE2b against ``file_hash``.

    Raises
    ------
    VboError
        On HTTP failure or when the bytes do not hash to ``file_hash``.
    """
    data = _get(object_url(bucket, key, version_id), what)
    digest = hashlib.blake2b(data).hexdigest()
    if digest != file_hash:
        raise VboError(
            f"{what}: BLAKE2b mismatch for {key}?versionId={version_id}: "
            f"manifest says {file_hash[:16]}..., got {digest[:16]}..."
        )
    return data


def _get(url: str, what: str) -> bytes:
    """GET with retries; requests is imported only here, so reading a copy never loads it."""
    from ..transfer.http import get_bytes

    return get_bytes(url, what)

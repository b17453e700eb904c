"""Parse and validate a release manifest into rows: data files and metadata files.

The manifest is trusted for nothing: every entry is checked (types, integer file ids,
128-hex BLAKE2b hashes, URLs on the bucket's own S3 host, keys inside the project
prefix) before anything is written, and the first problem is reported in one line
naming the manifest and the entry.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..base.errors import VboError
from ..base.hashes import HEX_LENGTH, is_file_hash
from .release import BUCKET, DATA_FOLDERS, PROJECT_PREFIX

VERSION = re.compile(r"\d+\.\d+\.\d+")
# The bucket's S3 host in virtual-host style, any regional form.
_VIRTUAL_HOST = re.compile(re.escape(BUCKET) + r"\.s3([.-][a-z0-9-]+)?\.amazonaws\.com")
_PATH_HOST = re.compile(r"s3([.-][a-z0-9-]+)?\.amazonaws\.com")
# A data file's key names its kind and id: one named group per kind.
_DATA_KEY = re.compile(
    re.escape(PROJECT_PREFIX)
    + "(?:"
    + "|".join(re.escape(t).replace(r"\{\}", rf"(?P<{k}>\d+)") for k, t in DATA_FOLDERS.items())
    + ")"
)
REQUIRED = {
    "project_name": str,
    "manifest_version": str,
    "metadata_file_id_column_name": str,
    "data_pipeline": list,
    "metadata_files": dict,
    "data_files": dict,
}


@dataclass(frozen=True)
class DataFile:
    """One data file (an NWB) of a release version."""

    file_id: int
    kind: str  # "behavior_session", "ophys_experiment" or "other"
    behavior_session_id: int | None
    ophys_experiment_id: int | None
    key: str
    url: str
    version_id: str
    file_hash: str


@dataclass(frozen=True)
class MetadataFile:
    """One metadata table (a CSV) of a release version."""

    name: str
    key: str
    url: str
    version_id: str
    file_hash: str


@dataclass(frozen=True)
class Manifest:
    """A validated manifest."""

    version: str
    project_name: str
    file_id_column: str
    data_pipeline: list
    metadata_files: list[MetadataFile]
    data_files: list[DataFile]


def parse_manifest(data: bytes, where: str, version: str | None = None) -> Manifest:
    """Validate manifest JSON and turn it into rows.

    Parameters
    ----------
    data : bytes
        The manifest file's bytes.
    where : str
        Names the manifest in errors (its key or path).
    version : str, optional
        The version the file name promises; ``manifest_version`` must agree.

    Raises
    ------
    VboError
        One line naming ``where`` and the offending entry.
    """
    try:
        doc = json.loads(data, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise VboError(f"{where}: not UTF-8 JSON ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise VboError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:
        raise VboError(f"{where}: {exc}") from None
    if not isinstance(doc, dict):
        raise VboError(f"{where}: expected a JSON object at the top level")
    for name, kind in REQUIRED.items():
        if name not in doc:
            raise VboError(f"{where}: missing top-level key {name!r}")
        if not isinstance(doc[name], kind):
            raise VboError(f"{where}: {name!r} should be a {kind.__name__}")
    found = doc["manifest_version"]
    if not VERSION.fullmatch(found):
        raise VboError(f"{where}: manifest_version {found!r} is not X.Y.Z")
    if version is not None and found != version:
        raise VboError(f"{where}: manifest_version {found!r} does not match file name v{version}")
    metadata = [_metadata_file(name, e, where) for name, e in doc["metadata_files"].items()]
    files = [_data_file(file_id, e, where) for file_id, e in doc["data_files"].items()]
    _check_unique(files, where)
    return Manifest(
        version=found,
        project_name=doc["project_name"],
        file_id_column=doc["metadata_file_id_column_name"],
        data_pipeline=doc["data_pipeline"],
        metadata_files=metadata,
        data_files=files,
    )


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """json object hook that refuses repeated keys (json.loads would keep the last)."""
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _entry(entry: object, label: str, where: str) -> tuple[str, str, str, str]:
    """Check one ``{url, version_id, file_hash}`` entry; return it with its key."""
    if not isinstance(entry, dict):
        raise VboError(f"{where}: {label}: expected an object with url, version_id, file_hash")
    for name in ("url", "version_id", "file_hash"):
        if not isinstance(entry.get(name), str) or not entry[name]:
            raise VboError(f"{where}: {label}: missing or non-string {name!r}")
    if not is_file_hash(entry["file_hash"]):
        raise VboError(
            f"{where}: {label}: file_hash is not {HEX_LENGTH} lowercase hex characters (BLAKE2b)"
        )
    key = object_key(entry["url"], f"{where}: {label}")
    return entry["url"], key, entry["version_id"], entry["file_hash"]


def object_key(url: str, what: str) -> str:
    """The bucket key of an entry URL on the bucket's S3 host.

    Accepts virtual-host (``<bucket>.s3[.<region>].amazonaws.com/<key>``) and path
    style (``s3[.<region>].amazonaws.com/<bucket>/<key>``); refuses any other host
    and any key that could escape the project prefix.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if parts.scheme != "https" or parts.query or parts.fragment:
        raise VboError(f"{what}: URL {url!r} is not a plain https object URL")
    if _VIRTUAL_HOST.fullmatch(host):
        key = path[1:]
    elif _PATH_HOST.fullmatch(host) and path.startswith(f"/{BUCKET}/"):
        key = path[len(BUCKET) + 2 :]
    else:
        raise VboError(f"{what}: URL host {host!r} is not the {BUCKET} bucket on S3")
    segments = key.split("/")
    unsafe = "\\" in key or "\x00" in key or any(s in ("", ".", "..") for s in segments)
    if unsafe or posixpath.normpath(key) != key or not key.startswith(PROJECT_PREFIX):
        raise VboError(f"{what}: key {key!r} is outside {PROJECT_PREFIX!r}")
    return key


def _metadata_file(name: str, entry: object, where: str) -> MetadataFile:
    url, key, version_id, file_hash = _entry(entry, f"metadata_files[{name!r}]", where)
    if not key.endswith(f"/project_metadata/{name}.csv"):
        raise VboError(f"{where}: metadata_files[{name!r}]: key {key!r} is not {name}.csv")
    return MetadataFile(name, key, url, version_id, file_hash)


def _data_file(file_id: str, entry: object, where: str) -> DataFile:
    label = f"data_files[{file_id!r}]"
    if not re.fullmatch(r"0|[1-9]\d*", file_id):
        raise VboError(f"{where}: {label}: file_id key is not an integer")
    url, key, version_id, file_hash = _entry(entry, label, where)
    match = _DATA_KEY.fullmatch(key)
    ids = {k: int(v) for k, v in match.groupdict().items() if v} if match else {}
    kind = next(iter(ids), "other")
    bs, oe = ids.get("behavior_session"), ids.get("ophys_experiment")
    return DataFile(int(file_id), kind, bs, oe, key, url, version_id, file_hash)


def _check_unique(files: list[DataFile], where: str) -> None:
    """Refuse two entries for one key, one behavior session or one experiment."""
    seen: dict[tuple[str, object], int] = {}
    for f in files:
        ids = [("key", f.key)]
        if f.behavior_session_id is not None:
            ids.append(("behavior_session_id", f.behavior_session_id))
        if f.ophys_experiment_id is not None:
            ids.append(("ophys_experiment_id", f.ophys_experiment_id))
        for ident in ids:
            if ident in seen:
                raise VboError(
                    f"{where}: data_files[{str(f.file_id)!r}]: duplicate {ident[0]} {ident[1]} "
                    f"(also data_files[{str(seen[ident])!r}])"
                )
            seen[ident] = f.file_id

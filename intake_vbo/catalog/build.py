"""The pipeline: release -> manifests -> typed tables -> index -> catalog YAMLs.

Incremental: a version whose manifest (by ETag) is already built is neither fetched nor
rewritten. Atomic: everything is fetched and validated in memory first; new files go
to ``DIR/.staging`` and reach their place by renames, the index last but one and the
root catalog last, so a failed or killed build leaves the previous catalog as it was.
Shared: the lab's data managers take turns through a lock file any of them can take, and
a directory not writable by their group is a one-line error naming it, its owner and mode.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..base import fileops
from ..base.crash import crash_point
from ..base.errors import VboError
from ..base.progress import progress_bar
from ..base.settings import local_dir
from . import index, indexwrite, origin, release, yamls
from .manifest import Manifest, parse_manifest
from .record import CATALOG_FORMAT, recorded_settings

if TYPE_CHECKING:
    import pyarrow as pa

STAGING = ".staging"
LOCK = ".build.lock"


@dataclass
class BuildReport:
    """What a build did."""

    built: list[str] = field(default_factory=list)  # versions fetched and (re)written
    unchanged: list[str] = field(default_factory=list)
    seconds: float = 0.0


def select_versions(listing: dict[str, release.ManifestObject], wanted: str, bucket: str):
    """Resolve ``all``, ``latest`` or ``X.Y.Z,...`` against the released versions."""
    if not listing:
        raise VboError(f"{bucket}: no manifests under {release.MANIFEST_PREFIX}")
    if wanted == "all":
        return list(listing)
    if wanted == "latest":
        return [list(listing)[-1]]
    chosen = [v.strip().lstrip("v") for v in wanted.split(",") if v.strip()]
    for version in chosen:
        if version not in listing:
            raise VboError(
                f"unknown version {version!r} at {bucket}: released are {', '.join(listing)}"
            )
    return sorted(set(chosen), key=release.version_key)


def build(
    out: str | Path,
    bucket_url: str | None = None,
    versions: str = "all",
    cache_dir: str | None = None,
) -> BuildReport:
    """Build or incrementally update the catalog in ``out``.

    Parameters
    ----------
    out : path
        The catalog directory (created if missing).
    bucket_url : str, optional
        Where the release is served; default the public bucket.
    versions : str
        ``all``, ``latest`` or a comma-separated list of ``X.Y.Z``.
    cache_dir : str, optional
        Recorded in the catalog as the default download cache of its NWB sources.

    Raises
    ------
    VboError
        On any bad input; ``out`` is left exactly as it was.
    """
    start = time.perf_counter()
    root = Path(out)
    bucket = origin.bucket_url(bucket_url)
    listing = origin.list_manifests(bucket)
    chosen = select_versions(listing, versions, bucket)
    # The root catalog is replaced whole, last: reading it needs no lock, so a no-op
    # rebuild (every reader of a copy, every from_s3_cache) takes none.
    if _up_to_date(root, bucket, listing, chosen, cache_dir):
        return BuildReport(unchanged=list(chosen), seconds=time.perf_counter() - start)
    from filelock import FileLock, Timeout

    lock = FileLock(root / LOCK, timeout=600, mode=fileops.FILE_MODE)  # any data manager's
    try:
        with fileops.shared(root, "catalog"):  # a directory not the group's: say so
            root.mkdir(parents=True, exist_ok=True)
            with lock:
                report = _build_locked(root, bucket, listing, chosen, cache_dir)
    except Timeout:
        raise VboError(f"{root}: another build holds {LOCK}; try again later") from None
    report.seconds = time.perf_counter() - start
    return report


def _build_locked(root, bucket, listing, chosen, cache_dir) -> BuildReport:
    staging = root / STAGING
    if _up_to_date(root, bucket, listing, chosen, cache_dir):
        return BuildReport(unchanged=list(chosen))
    indexwrite.clear_staging(staging)
    etags, parts = index.read_state(root)
    report = BuildReport()
    todo = [v for v in chosen if etags.get(v) != listing[v].etag]
    report.unchanged = [v for v in chosen if v not in todo]
    fetched = _fetch_versions(bucket, listing, todo)
    crash_point("build:fetched")
    etags.update({v: listing[v].etag for v in fetched})
    if fetched:
        parts = [p for p in parts if p.version not in fetched]
        for version, data in fetched.items():
            for name, table in data.items():
                parts.append(indexwrite.write_part(staging, name, version, table))
        crash_point("build:staged")
        indexwrite.commit_parts(root, staging, parts)
        crash_point("build:parts-committed")
        latest = max(etags, key=release.version_key)
        indexwrite.write_index(root, staging, parts, latest=latest)
        crash_point("build:index-written")
        report.built = list(fetched)
    yamls.write_catalogs(root, staging, parts, bucket, cache_dir, etags)
    crash_point("build:catalogs-written")
    indexwrite.remove_unreferenced(root, parts)  # also what a killed build left
    indexwrite.clear_staging(staging)
    return report


def _up_to_date(root: Path, bucket: str, listing, chosen: list[str], cache_dir) -> bool:
    """Whether the root catalog already records exactly this build (a no-op rebuild).

    The root catalog is written last, so what it records was built whole; checking it
    spares a no-op rebuild from opening the index at all. A catalog written by another
    catalog format is not up to date: its files are rewritten even if no manifest changed.
    """
    settings = recorded_settings(root)
    if settings is None:
        return False
    same_cache = cache_dir is None or str(local_dir(cache_dir)) == settings.cache_dir
    return (
        (root / index.INDEX_FILE).exists()
        and not (root / STAGING).exists()
        and settings.format == CATALOG_FORMAT
        and settings.bucket_url == bucket
        and same_cache
        and all(settings.manifest_etags.get(v) == listing[v].etag for v in chosen)
    )


def _fetch_versions(bucket: str, listing, versions: list[str]) -> dict[str, dict[str, pa.Table]]:
    """Fetch, validate and type every chosen version; nothing is written here."""
    if not versions:
        return {}
    with (
        ThreadPoolExecutor(max_workers=4) as pool,
        progress_bar(len(versions), f"build {', '.join(versions)}", unit="file") as bar,
    ):
        manifests = list(pool.map(lambda v: _fetch_manifest(bucket, listing[v]), versions))
        bar.update(len(manifests))
        jobs = [
            (m, entry, pool.submit(_fetch_table, bucket, m, entry))
            for m, _ in manifests
            for entry in m.metadata_files
        ]
        bar.total += len(jobs)
        results = {m.version: {} for m, _ in manifests}
        for m, entry, job in jobs:
            results[m.version][entry.name] = job.result()
            bar.update()
    return {
        m.version: _tables(m, raw, listing[m.version].etag, results[m.version])
        for m, raw in manifests
    }


def _fetch_manifest(bucket: str, obj: release.ManifestObject) -> tuple[Manifest, bytes]:
    data = origin.fetch_manifest(bucket, obj.version)
    return parse_manifest(data, obj.key, obj.version), data


def _fetch_table(bucket: str, manifest: Manifest, entry) -> pa.Table | None:
    """One metadata CSV, verified and typed (``None`` for a table we do not know)."""
    from .schema import CSV_TABLES
    from .tables import read_table

    what = f"{entry.name}.csv (manifest {manifest.version})"
    data = origin.fetch_verified(
        bucket, entry.key, manifest.version, entry.version_id, entry.file_hash, what
    )
    if entry.name not in CSV_TABLES:
        return None
    return read_table(CSV_TABLES[entry.name], data, what)


def _tables(manifest: Manifest, raw: bytes, etag: str, metadata: dict[str, pa.Table | None]):
    """Every table of one version, keyed by our table name."""
    import pyarrow as pa

    from .schema import CSV_TABLES, MANIFESTS_SCHEMA, METADATA_FILES_SCHEMA

    tables = {CSV_TABLES[name]: t for name, t in metadata.items() if t is not None}
    tables["files"] = _files_table(manifest, tables.get("ophys_experiments"))
    tables["metadata_files"] = pa.Table.from_pylist(
        [
            {
                "name": e.name,
                "table_name": CSV_TABLES.get(e.name),
                "key": e.key,
                "url": e.url,
                "version_id": e.version_id,
                "file_hash": e.file_hash,
                "num_rows": None if metadata[e.name] is None else metadata[e.name].num_rows,
            }
            for e in manifest.metadata_files
        ],
        schema=METADATA_FILES_SCHEMA,
    )
    manifest_row = {
        "project_name": manifest.project_name,
        "key": release.manifest_key(manifest.version),
        "etag": etag,
        "file_hash": hashlib.blake2b(raw).hexdigest(),
        "metadata_file_id_column_name": manifest.file_id_column,
        "data_pipeline": json.dumps(manifest.data_pipeline),
        "num_data_files": len(manifest.data_files),
        "metadata_tables": sorted(e.name for e in manifest.metadata_files),
    }
    tables["manifests"] = pa.Table.from_pylist([manifest_row], schema=MANIFESTS_SCHEMA)
    return tables


def _files_table(manifest: Manifest, experiments: pa.Table | None) -> pa.Table:
    """One row per data file; experiment files get their behavior session from the table."""
    import pyarrow as pa

    from .schema import FILES_SCHEMA

    session_of = {}
    if experiments is not None and "behavior_session_id" in experiments.column_names:
        session_of = dict(
            zip(
                experiments.column("ophys_experiment_id").to_pylist(),
                experiments.column("behavior_session_id").to_pylist(),
                strict=True,
            )
        )
    rows = [
        {
            "file_id": f.file_id,
            "kind": f.kind,
            "behavior_session_id": (
                f.behavior_session_id
                if f.behavior_session_id is not None
                else session_of.get(f.ophys_experiment_id)
            ),
            "ophys_experiment_id": f.ophys_experiment_id,
            "key": f.key,
            "url": f.url,
            "version_id": f.version_id,
            "file_hash": f.file_hash,
        }
        for f in manifest.data_files
    ]
    return pa.Table.from_pylist(rows, schema=FILES_SCHEMA)

"""From a built catalog to files: versions, ids, manifest entries, URLs and the cache.

The NWB sources resolve one id at a time (:func:`resolve_files`); the command line's
``fetch``, ``verify`` and ``adopt`` resolve many, from the settings the build recorded
in the root catalog and the partitions the index lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..base.errors import VboError
from ..catalog.index import connect, partitions, read_part
from ..catalog.record import read_settings
from ..catalog.release import KINDS, bucket_url, id_column, kind_label, object_url
from ..transfer.cache import Cache, open_cache

ENTRY = ("file_id", "kind", "key", "version_id", "file_hash", "url")


def resolve_files(
    files: str, behavior_sessions: str | None, kind: str, ids, version: str
) -> dict[int, dict]:
    """The manifest entry of each behavior session or ophys experiment in ``ids``.

    Reads the version's files table (and behavior table) once, whatever the number
    of ids. A behavior session recorded with imaging has no NWB of its own and gets
    the file of the first ophys experiment in its list, as AllenSDK serves it.
    ``ids=None`` means every file of that kind in the version, in id order.

    Parameters
    ----------
    files, behavior_sessions : str
        The version's ``files`` and ``behavior_sessions`` Parquet partitions.
    kind : str
        ``behavior_session`` or ``ophys_experiment``.
    ids : iterable of int or None
        The ids to resolve; None for every file of ``kind``.
    version : str
        The release version, for error messages.

    Raises
    ------
    VboError
        Naming the first id the version does not have, and the version.
    """
    rows = read_part(files, [*ENTRY, *map(id_column, KINDS)]).to_pylist()
    by_id = {(r["kind"], r[id_column(r["kind"])]): r for r in rows if r["kind"] in KINDS}
    if ids is None:
        ids = sorted(ident for k, ident in by_id if k == kind)
    first = {}
    if kind == "behavior_session" and behavior_sessions:
        sessions = read_part(behavior_sessions)
        lists = (
            sessions.column("ophys_experiment_id").to_pylist()
            if "ophys_experiment_id" in sessions.column_names
            else [None] * sessions.num_rows
        )
        for sid, experiments in zip(
            sessions.column("behavior_session_id").to_pylist(), lists, strict=True
        ):
            first[sid] = experiments[0] if experiments else None
    found = {}
    for ident in ids:
        row = by_id.get((kind, ident))
        if row is None and kind == "behavior_session":
            if behavior_sessions and ident not in first:
                raise VboError(f"behavior session {ident} is not in release {version}")
            row = by_id.get(("ophys_experiment", first.get(ident)))
        if row is None:
            raise VboError(f"{kind_label(kind)} {ident} has no NWB file in release {version}")
        found[ident] = {k: row[k] for k in ENTRY}
    return found


@dataclass
class CatalogVersion:
    """One version of a built catalog, as the command line needs it."""

    version: str
    partitions: dict[str, Path]  # table -> its Parquet partition for this version
    bucket_url: str  # as recorded; VBO_BUCKET_URL wins when serving
    cache_dir: str | None  # as recorded; VBO_CACHE_DIR wins

    def cache(self) -> Cache:
        """The cache this catalog's NWB sources use."""
        return open_cache(self.cache_dir)

    def items(self, experiments=(), sessions=(), everything=False) -> list[tuple[str, str, str]]:
        """``(label, url, file_hash)`` of the files asked for, resolved in this version."""
        bucket = bucket_url(recorded=self.bucket_url)
        files, behavior = self.partitions["files"], self.partitions.get("behavior_sessions")
        items = []
        for kind, ids in (("ophys_experiment", experiments), ("behavior_session", sessions)):
            if ids:
                found = resolve_files(files, behavior, kind, ids, self.version)
                for ident in ids:
                    entry = found[ident]
                    url = object_url(bucket, entry["key"], entry["version_id"])
                    items.append((f"{kind} {ident}", url, entry["file_hash"]))
        if everything:
            table = read_part(files, ["key", "version_id", "file_hash"]).to_pydict()
            for key, vid, file_hash in zip(*table.values(), strict=True):
                items.append((key, object_url(bucket, key, vid), file_hash))
        return list(dict.fromkeys(items))


def catalog_version(catalog_dir: str | Path, version: str) -> CatalogVersion:
    """A version (``X.Y.Z`` or ``latest``) of the catalog in ``catalog_dir``."""
    recorded = read_settings(catalog_dir)
    chosen = recorded.latest if version == "latest" else version.lstrip("v")
    if chosen not in recorded.versions:
        built = ", ".join(recorded.versions)
        raise VboError(f"unknown version {version!r} in {catalog_dir}: built are {built}")
    con = connect(catalog_dir)
    try:
        found = {p.table: Path(catalog_dir) / p.path for p in partitions(con, chosen)}
    finally:
        con.close()
    return CatalogVersion(chosen, found, recorded.bucket_url, recorded.cache_dir)


@dataclass
class CatalogFiles:
    """Every data file of every version of a built catalog."""

    rows: list[tuple[str, str, str]]  # (file_hash, key, version_id), one per content
    bucket_url: str
    cache_dir: str | None

    def cache(self) -> Cache:
        """The cache recorded for the catalog (``VBO_CACHE_DIR`` overrides)."""
        return open_cache(self.cache_dir)

    def urls(self) -> dict[str, str]:
        """file_hash -> a URL serving that content."""
        bucket = bucket_url(recorded=self.bucket_url)
        return {h: object_url(bucket, key, vid) for h, key, vid in self.rows}

    def suffixes(self) -> dict[str, str]:
        """file_hash -> the file's suffix in the cache."""
        return {h: Path(key).suffix or ".nwb" for h, key, _ in self.rows}


def catalog_files(catalog_dir: str | Path) -> CatalogFiles:
    """The data files of every built version, from the DuckDB index."""
    recorded = read_settings(catalog_dir)
    con = connect(catalog_dir)
    try:
        rows = con.execute(
            "SELECT file_hash, any_value(key), any_value(version_id) FROM files GROUP BY file_hash"
        ).fetchall()
    finally:
        con.close()
    return CatalogFiles(rows, recorded.bucket_url, recorded.cache_dir)

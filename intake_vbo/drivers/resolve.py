"""From a built catalog to files: versions, ids, manifest entries, URLs and the cache.

The NWB sources resolve one id at a time (:func:`resolve_files`); the command line's
``fetch``, ``verify`` and ``adopt`` resolve many, from the settings the build recorded
in the root catalog and the partitions the index lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..base.errors import VboError
from ..catalog import localcopy
from ..catalog.index import connect, read_part
from ..catalog.origin import bucket_url, copy_root, locate
from ..catalog.record import read_settings
from ..catalog.release import KINDS, id_column, kind_label, object_url
from ..catalog.yamls import table_paths
from ..transfer.inplace import open_in_place

if TYPE_CHECKING:
    from ..transfer.cache import Cache

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
    table = read_part(files, [*ENTRY, *map(id_column, KINDS)])
    if ids is not None and kind == "ophys_experiment":
        table = _only(table, ids)  # a few rows as dicts, not thousands
    rows = table.to_pylist()
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


def _only(table, ids):
    """The rows of ``table`` whose ophys_experiment_id is among ``ids`` (no compute kernels:
    importing pyarrow.compute would cost a first look more than the rows do)."""
    import pyarrow as pa

    wanted = set(ids)
    column = table.column("ophys_experiment_id").to_pylist()
    rows = [table.slice(i, 1) for i, ident in enumerate(column) if ident in wanted]
    return pa.concat_tables(rows) if rows else table.slice(0, 0)


@dataclass
class CatalogVersion:
    """One version of a built catalog, as the command line needs it."""

    version: str
    partitions: dict[str, Path]  # table -> its Parquet partition for this version
    bucket_url: str  # as recorded; VBO_BUCKET_URL wins when serving
    cache_dir: str | None  # as recorded; VBO_CACHE_DIR wins
    explicit: str | None = None  # a bucket URL that wins over both (a copy read in place)

    def cache(self) -> Cache:
        """The cache this catalog's NWB sources use."""
        from ..transfer.cache import open_cache  # requests: not for a file on a copy

        return open_cache(self.cache_dir)

    def bucket(self) -> str:
        """Where the files are read: explicit, else ``VBO_BUCKET_URL``, else as recorded."""
        return bucket_url(self.explicit, recorded=self.bucket_url)

    def entries(self, experiments=(), sessions=(), everything=False) -> list[tuple]:
        """``(label, key, version_id, file_hash)`` of the files asked for, in this version."""
        files, behavior = self.partitions["files"], self.partitions.get("behavior_sessions")
        found = []
        for kind, ids in (("ophys_experiment", experiments), ("behavior_session", sessions)):
            if ids:
                entries = resolve_files(files, behavior, kind, ids, self.version)
                for ident in ids:
                    e = entries[ident]
                    found.append((f"{kind} {ident}", e["key"], e["version_id"], e["file_hash"]))
        if everything:
            table = read_part(files, ["key", "version_id", "file_hash"]).to_pydict()
            found += [(k, k, v, h) for k, v, h in zip(*table.values(), strict=True)]
        return list(dict.fromkeys(found))

    def items(self, experiments=(), sessions=(), everything=False) -> list[tuple[str, str, str]]:
        """``(label, url, file_hash)`` of the files asked for, resolved in this version.

        On a copy of the release the URL is the file's ``file://`` URL on the copy.
        """
        bucket = self.bucket()
        return [
            (label, locate(bucket, key, vid, self.version, file_hash), file_hash)
            for label, key, vid, file_hash in self.entries(experiments, sessions, everything)
        ]

    def in_place(self, experiments=(), sessions=(), everything=False) -> list[tuple]:
        """``(label, path or None, why not)`` of each file asked for, on a copy of the release."""
        bucket, found = self.bucket(), []
        for label, key, vid, file_hash in self.entries(experiments, sessions, everything):
            try:
                path = open_in_place(locate(bucket, key, vid, self.version, file_hash))
                found.append((label, path, None))
            except VboError as exc:
                found.append((label, None, str(exc)))
        return found


def catalog_version(catalog_dir: str | Path, version: str, bucket: str | None = None
                    ) -> CatalogVersion:  # fmt: skip
    """A version (``X.Y.Z`` or ``latest``) of the catalog in ``catalog_dir``.

    ``bucket``, if given, wins over ``VBO_BUCKET_URL`` and the recorded bucket URL.
    """
    recorded = read_settings(catalog_dir)
    chosen = recorded.latest if version == "latest" else version.lstrip("v")
    if chosen not in recorded.versions:
        built = ", ".join(recorded.versions)
        raise VboError(f"unknown version {version!r} in {catalog_dir}: built are {built}")
    found = table_paths(Path(catalog_dir), chosen)
    return CatalogVersion(chosen, found, recorded.bucket_url, recorded.cache_dir, bucket)


@dataclass
class CatalogFiles:
    """Every data file of every version of a built catalog."""

    rows: list[tuple[str, str, str]]  # (file_hash, key, version_id), one per content
    bucket_url: str
    cache_dir: str | None

    def cache(self) -> Cache:
        """The cache recorded for the catalog (``VBO_CACHE_DIR`` overrides)."""
        from ..transfer.cache import open_cache  # requests: not for a file on a copy

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


def copy_files(catalog_dir: str | Path) -> tuple[Path, dict[Path, str]] | None:
    """The copy a catalog reads in place, and each of its files with the hash it should have.

    None when the catalog reads from a bucket over HTTP. In the bucket's layout a key
    holds its latest upload, so its file should hash as the newest manifest on the copy
    listing it says; in an AllenSDK cache, as its own version's manifest says.
    """
    root = copy_root(bucket_url(recorded=read_settings(catalog_dir).bucket_url))
    if root is None:
        return None
    con = connect(catalog_dir)
    try:
        rows = con.execute("SELECT DISTINCT manifest_version, key, file_hash FROM files").fetchall()
    finally:
        con.close()
    held = (
        localcopy.current_hashes(root) if localcopy.layout(root) == localcopy.BUCKET_LAYOUT else {}
    )
    expected = {}
    for version, key, file_hash in sorted(rows):
        path = localcopy.key_path(root, key, version)
        expected[path] = held.get(key, (version, file_hash))[1]
    return root, expected

"""Write and read the index: hive-partitioned Parquet and one self-contained DuckDB file.

Parquet partitions are immutable and named by their content
(``parquet/<table>/manifest_version=<X.Y.Z>/part-<digest>.parquet``), so a rebuild never
rewrites a file a reader may hold open. ``vbo.duckdb`` is rebuilt from the partitions
into a temporary file and swapped in with one rename: readers see the old index or the
new one, never half of one. It holds real tables, not views over Parquet, so it opens
from any working directory, in the DuckDB CLI too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import VboError, no_catalog
from .release import version_key
from .schema import INDEX, INDEX_TABLES

if TYPE_CHECKING:
    import pyarrow as pa

INDEX_FILE = "vbo.duckdb"
# DuckDB 2.0 writes files the 1.5 CLI cannot read unless asked for the older format.
STORAGE_VERSION = "v1.5.0"


@dataclass(frozen=True)
class Part:
    """One Parquet partition: a table's rows for one version."""

    table: str
    version: str
    path: str  # relative to the catalog directory, "/"-separated
    rows: int


def write_part(staging: Path, table: str, version: str, data: pa.Table) -> Part:
    """Write one partition into ``staging``; :func:`commit_parts` moves it into place.

    The file name carries a digest of its bytes, so an unchanged partition keeps its
    name and a changed one never overwrites the old file.
    """
    import pyarrow.parquet as pq

    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / f"{table}-{version}.parquet"
    pq.write_table(data, tmp, compression="zstd")
    digest = hashlib.blake2b(tmp.read_bytes(), digest_size=8).hexdigest()
    rel = f"parquet/{table}/manifest_version={version}/part-{digest}.parquet"
    final = staging / "parts" / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    return Part(table, version, rel, data.num_rows)


def commit_parts(root: Path, staging: Path, parts: list[Part]) -> None:
    """Move staged partitions to their final place (no-op for ones already there)."""
    for part in parts:
        src = staging / "parts" / part.path
        dst = root / part.path
        if not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():  # same name means same bytes
            src.unlink()
        else:
            os.replace(src, dst)


def remove_unreferenced(root: Path, parts: list[Part]) -> list[Path]:
    """Delete Parquet files the index no longer names; return what was removed."""
    keep = {root / p.path for p in parts}
    removed = []
    for path in sorted((root / "parquet").rglob("*.parquet")):
        if path not in keep:
            path.unlink()
            removed.append(path)
    for folder in sorted((root / "parquet").glob("*/*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def write_index(root: Path, staging: Path, parts: list[Part], latest: str) -> None:
    """Build ``vbo.duckdb`` from the partitions, then swap it in atomically."""
    import duckdb

    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / INDEX_FILE
    for leftover in (tmp, tmp.with_name(INDEX_FILE + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_VERSION})
    try:
        for table in INDEX_TABLES:
            files = [str(root / p.path) for p in parts if p.table == table]
            if files:
                _load_table(con, table, files)
        _write_partitions(con, parts)
        _write_changes(con, sorted({p.version for p in parts}, key=version_key))
        for table in INDEX_TABLES:
            if any(p.table == table for p in parts):
                con.execute(
                    f"CREATE VIEW latest_{table} AS SELECT * FROM {table} "
                    f"WHERE manifest_version = '{latest}'"
                )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, root / INDEX_FILE)


def _load_table(con, table: str, files: list[str]) -> None:
    """One table over every version, columns unioned by name (NULL where a version lacks one)."""
    con.execute(
        f"CREATE TABLE {table} AS SELECT manifest_version, * EXCLUDE (manifest_version) "
        "FROM read_parquet($files, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'manifest_version': VARCHAR})",
        {"files": files},
    )


def _write_partitions(con, parts: list[Part]) -> None:
    rows = [(p.table, p.version, p.path, p.rows) for p in parts]
    con.execute(
        "CREATE TABLE partitions (table_name VARCHAR, manifest_version VARCHAR, "
        "path VARCHAR, num_rows BIGINT)"
    )
    con.executemany("INSERT INTO partitions VALUES (?, ?, ?, ?)", rows)


# Objects of two versions, side by side by key: data files and metadata files alike.
_OBJECTS = """
    SELECT key, kind, version_id, file_hash FROM files WHERE manifest_version = $v
    UNION ALL
    SELECT key, 'metadata' AS kind, version_id, file_hash FROM metadata_files
    WHERE manifest_version = $v
"""
CHANGES_SQL = f"""
    SELECT $a AS from_version, $b AS to_version, coalesce(new.key, old.key) AS key,
           coalesce(new.kind, old.kind) AS kind,
           CASE WHEN old.key IS NULL THEN 'created'
                WHEN new.key IS NULL THEN 'deleted' ELSE 'changed' END AS change,
           old.version_id AS old_version_id, new.version_id AS new_version_id
    FROM ({_OBJECTS.replace("$v", "$a")}) AS old
    FULL OUTER JOIN ({_OBJECTS.replace("$v", "$b")}) AS new USING (key)
    WHERE old.key IS NULL OR new.key IS NULL
       OR old.version_id IS DISTINCT FROM new.version_id
       OR old.file_hash IS DISTINCT FROM new.file_hash
    ORDER BY change, key
"""


def _write_changes(con, versions: list[str]) -> None:
    """``changes`` between each pair of consecutive built versions."""
    con.execute(
        "CREATE TABLE changes (from_version VARCHAR, to_version VARCHAR, key VARCHAR, "
        "kind VARCHAR, change VARCHAR, old_version_id VARCHAR, new_version_id VARCHAR)"
    )
    for a, b in zip(versions, versions[1:], strict=False):
        con.execute(f"INSERT INTO changes {CHANGES_SQL}", {"a": a, "b": b})


def connect(root: Path):
    """Open the index read-only (readers never lock out a build or each other)."""
    import duckdb

    path = Path(root) / INDEX_FILE
    if not path.exists():
        raise no_catalog(root)
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise VboError(f"{path}: cannot open the index ({first})") from None


def read_state(root: Path) -> tuple[dict[str, str], list[Part]]:
    """What is built: manifest ETag per version, and every partition."""
    if not (Path(root) / INDEX_FILE).exists():
        return {}, []
    con = connect(root)
    try:
        etags = dict(con.execute("SELECT manifest_version, etag FROM manifests").fetchall())
        rows = con.execute("SELECT table_name, manifest_version, path, num_rows FROM partitions")
        parts = [Part(*row) for row in rows.fetchall()]
    finally:
        con.close()
    return etags, parts


def clear_staging(staging: Path) -> None:
    """Remove what a failed or killed build left behind."""
    shutil.rmtree(staging, ignore_errors=True)


def diff(root: Path, a: str, b: str) -> tuple[list[tuple], list[dict]]:
    """What changed from version ``a`` to ``b``.

    Returns
    -------
    objects : list of tuple
        ``(key, kind, change)`` for every created, deleted or changed object
        (data files and metadata CSVs), as in the ``changes`` table.
    tables : list of dict
        Per metadata table: rows added, removed and changed (by id, over the columns
        both versions have) and the columns added and removed.
    """
    con = connect(root)
    try:
        built = {v for (v,) in con.execute("SELECT manifest_version FROM manifests").fetchall()}
        for version in (a, b):
            if version not in built:
                known = ", ".join(sorted(built, key=version_key))
                raise VboError(f"unknown version {version!r} in {root}: built are {known}")
        objects = con.execute(CHANGES_SQL, {"a": a, "b": b}).fetchall()
        rows = con.execute("SELECT table_name, manifest_version, path, num_rows FROM partitions")
        paths = {(t, v): Part(t, v, p, n) for t, v, p, n in rows.fetchall()}
        tables = [
            _table_diff(con, root, table, ident, a, b, paths)
            for table, ident in INDEX.items()
            if (table, a) in paths or (table, b) in paths
        ]
    finally:
        con.close()
    return [(key, kind, change) for _, _, key, kind, change, _, _ in objects], tables


def _table_diff(con, root, table, ident, a, b, paths) -> dict:
    """Row and column changes of one metadata table between two versions."""
    import pyarrow.parquet as pq

    parts = {v: paths.get((table, v)) for v in (a, b)}
    cols = {v: pq.read_schema(root / p.path).names if p else [] for v, p in parts.items()}
    # A table only one side has was wholly added or removed.
    counts = {
        "added": parts[b].rows if parts[b] and not parts[a] else 0,
        "removed": parts[a].rows if parts[a] and not parts[b] else 0,
        "changed": 0,
    }
    if parts[a] and parts[b]:
        ids = f"SELECT {ident} FROM {table} WHERE manifest_version = $v"
        for name, (x, y) in {"added": (b, a), "removed": (a, b)}.items():
            sql = (
                f"SELECT count(*) FROM ({ids.replace('$v', '$x')} EXCEPT {ids.replace('$v', '$y')})"
            )
            counts[name] = con.execute(sql, {"x": x, "y": y}).fetchone()[0]
        common = [c for c in cols[a] if c in cols[b] and c != ident]
        differs = " OR ".join(f'x."{c}" IS DISTINCT FROM y."{c}"' for c in common) or "false"
        counts["changed"] = con.execute(
            f"SELECT count(*) FROM {table} x JOIN {table} y USING ({ident}) "
            f"WHERE x.manifest_version = $a AND y.manifest_version = $b AND ({differs})",
            {"a": a, "b": b},
        ).fetchone()[0]
    return {
        "table": table,
        "rows_added": counts["added"],
        "rows_removed": counts["removed"],
        "rows_changed": counts["changed"],
        "columns_added": [c for c in cols[b] if c not in cols[a]],
        "columns_removed": [c for c in cols[a] if c not in cols[b]],
    }


def diff_report(a: str, b: str, objects: list[tuple], tables: list[dict], keys=False) -> str:
    """The text of ``intake-vbo diff``: per-table changes, file counts, and keys if asked.

    Parameters
    ----------
    a, b : str
        The two versions.
    objects, tables
        What :func:`diff` returned.
    keys : bool
        Also list every changed object, one ``change<TAB>kind<TAB>key`` line each.
    """
    lines = [f"{a} -> {b}"]
    for t in tables:
        line = (
            f"  {t['table']}: {t['rows_added']} rows added, {t['rows_removed']} removed, "
            f"{t['rows_changed']} changed"
        )
        if t["columns_added"]:
            line += f"; columns added: {', '.join(t['columns_added'])}"
        if t["columns_removed"]:
            line += f"; columns removed: {', '.join(t['columns_removed'])}"
        lines.append(line)
    counts: dict[tuple[str, str], int] = {}
    for _, kind, change in objects:
        counts[kind, change] = counts.get((kind, change), 0) + 1
    lines += [f"  {kind} files {change}: {n}" for (kind, change), n in sorted(counts.items())]
    if keys:
        lines += [f"{change}\t{kind}\t{key}" for key, kind, change in objects]
    return "\n".join(lines)


def read_part(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """One Parquet partition as Arrow, with a one-line error when it is missing or damaged."""
    import pyarrow.parquet as pq

    try:  # ParquetFile spares the import of pyarrow.dataset
        return pq.ParquetFile(path).read(columns=columns)
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VboError(
            f"{path}: cannot read catalog table ({first}); rebuild the catalog"
        ) from None

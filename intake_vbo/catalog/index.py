"""Read the index: the DuckDB file, the Parquet partitions it lists, and diffs.

The build writes both (:mod:`intake_vbo.catalog.indexwrite`); everything that serves a
catalog reads them here, so no reader depends on the writer. ``vbo.duckdb`` is opened
read-only: readers never lock out a build or each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..base.errors import VboError, no_catalog
from .release import version_key
from .schema import INDEX

if TYPE_CHECKING:
    import pyarrow as pa

INDEX_FILE = "vbo.duckdb"


@dataclass(frozen=True)
class Partition:
    """One Parquet partition: a table's rows for one version (a row of ``partitions``)."""

    table: str
    version: str
    path: str  # relative to the catalog directory, "/"-separated
    rows: int


PARTITIONS_SQL = "SELECT table_name, manifest_version, path, num_rows FROM partitions"


def partitions(con, version: str | None = None) -> list[Partition]:
    """The partitions the index lists (of one version, if given)."""
    if version is None:
        rows = con.execute(PARTITIONS_SQL).fetchall()
    else:
        rows = con.execute(f"{PARTITIONS_SQL} WHERE manifest_version = ?", [version]).fetchall()
    return [Partition(*row) for row in rows]


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


def connect(root: str | os.PathLike):
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


def read_state(root: Path) -> tuple[dict[str, str], list[Partition]]:
    """What is built: manifest ETag per version, and every partition."""
    if not (Path(root) / INDEX_FILE).exists():
        return {}, []
    con = connect(root)
    try:
        etags = dict(con.execute("SELECT manifest_version, etag FROM manifests").fetchall())
        return etags, partitions(con)
    finally:
        con.close()


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
        paths = {(p.table, p.version): p for p in partitions(con)}
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

"""Write the index: hive-partitioned Parquet and one self-contained DuckDB file.

Parquet partitions are immutable and named by their content
(``parquet/<table>/manifest_version=<X.Y.Z>/part-<digest>.parquet``), so a rebuild never
rewrites a file a reader may hold open. ``vbo.duckdb`` is rebuilt from the partitions
into a temporary file and swapped in with one rename: readers see the old index or the
new one, never half of one. It holds real tables, not views over Parquet, so it opens
from any working directory, in the DuckDB CLI too. Readers use
:mod:`intake_vbo.catalog.index`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..base import fileops
from .index import CHANGES_SQL, INDEX_FILE, Partition
from .release import version_key
from .schema import INDEX_TABLES

if TYPE_CHECKING:
    import pyarrow as pa

# DuckDB 2.0 writes files the 1.5 CLI cannot read unless asked for the older format.
STORAGE_VERSION = "v1.5.0"


def write_part(staging: Path, table: str, version: str, data: pa.Table) -> Partition:
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
    return Partition(table, version, rel, data.num_rows)


def commit_parts(root: Path, staging: Path, parts: list[Partition]) -> None:
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


def remove_unreferenced(root: Path, parts: list[Partition]) -> list[Path]:
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


def write_index(root: Path, staging: Path, parts: list[Partition], latest: str) -> None:
    """Build ``vbo.duckdb`` from the partitions, then swap it in atomically."""
    import duckdb

    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / INDEX_FILE
    for leftover in (tmp, tmp.with_name(INDEX_FILE + ".wal")):
        leftover.unlink(missing_ok=True)
    # DuckDB before 1.5 cannot name v1.5.0; what it writes by default, 1.5 reads.
    release = tuple(int(n) for n in duckdb.__version__.split(".")[:2])
    config = {"storage_compatibility_version": STORAGE_VERSION} if release >= (1, 5) else {}
    con = duckdb.connect(str(tmp), config=config)
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
    fileops.replace(tmp, root / INDEX_FILE)


def _load_table(con, table: str, files: list[str]) -> None:
    """One table over every version, columns unioned by name (NULL where a version lacks one)."""
    con.execute(
        f"CREATE TABLE {table} AS SELECT manifest_version, * EXCLUDE (manifest_version) "
        "FROM read_parquet($files, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'manifest_version': VARCHAR})",
        {"files": files},
    )


def _write_partitions(con, parts: list[Partition]) -> None:
    rows = [(p.table, p.version, p.path, p.rows) for p in parts]
    con.execute(
        "CREATE TABLE partitions (table_name VARCHAR, manifest_version VARCHAR, "
        "path VARCHAR, num_rows BIGINT)"
    )
    con.executemany("INSERT INTO partitions VALUES (?, ?, ?, ?)", rows)


def _write_changes(con, versions: list[str]) -> None:
    """``changes`` between each pair of consecutive built versions."""
    con.execute(
        "CREATE TABLE changes (from_version VARCHAR, to_version VARCHAR, key VARCHAR, "
        "kind VARCHAR, change VARCHAR, old_version_id VARCHAR, new_version_id VARCHAR)"
    )
    for a, b in zip(versions, versions[1:], strict=False):
        con.execute(f"INSERT INTO changes {CHANGES_SQL}", {"a": a, "b": b})


def clear_staging(staging: Path) -> None:
    """Remove what a failed or killed build left behind."""
    shutil.rmtree(staging, ignore_errors=True)

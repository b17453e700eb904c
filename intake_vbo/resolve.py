"""From a built catalog to files to fetch: versions, ids, URLs and the cache.

The command line's ``fetch``, ``verify`` and ``adopt`` start here; notebooks go through
the intake sources, which share the same resolution (:class:`~.sources.NWBSource`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import VboError


def open_root(catalog_dir: str | Path):
    """The root intake catalog of a build, with a clear error where there is none."""
    import intake

    from .catalog import ROOT_CATALOG

    path = Path(catalog_dir) / ROOT_CATALOG
    if not path.exists():
        raise VboError(f"{path}: no catalog here; run `intake-vbo build --out {catalog_dir}`")
    return intake.open_catalog(str(path))


@dataclass
class CatalogVersion:
    """One version of a built catalog, as the command line needs it."""

    version: str
    catalog: object  # the version's intake catalog

    def source(self, kind: str, ident: int):
        """The NWB source of one behavior session or ophys experiment."""
        return getattr(self.catalog, kind)(**{f"{kind}_id": ident})

    def cache(self):
        """The cache this catalog's NWB sources use."""
        return self.source("ophys_experiment", 0).cache()

    def items(self, experiments=(), sessions=(), everything=False) -> list[tuple[str, str, str]]:
        """``(label, url, file_hash)`` of the files asked for, resolved in this version."""
        from .release import bucket_url, object_url
        from .sources import resolve_files

        items = []
        for kind, ids in (("ophys_experiment", experiments), ("behavior_session", sessions)):
            if not ids:
                continue
            proto = self.source(kind, 0)  # the version's paths and bucket, as recorded
            found = resolve_files(
                proto.files, proto.behavior_sessions, kind, ids, proto.release_version
            )
            bucket = bucket_url(recorded=proto.bucket_url)
            for ident in ids:
                entry = found[ident]
                url = object_url(bucket, entry["key"], entry["version_id"])
                items.append((f"{kind} {ident}", url, entry["file_hash"]))
        if everything:
            files = self.catalog.files.read()
            bucket = bucket_url(recorded=self.source("ophys_experiment", 0).bucket_url)
            for key, vid, file_hash in zip(
                files["key"], files["version_id"], files["file_hash"], strict=True
            ):
                items.append((key, object_url(bucket, key, vid), file_hash))
        return list(dict.fromkeys(items))


def catalog_version(catalog_dir: str | Path, version: str) -> CatalogVersion:
    """A version (``X.Y.Z`` or ``latest``) of the catalog in ``catalog_dir``."""
    from .catalog import entry_name

    root = open_root(catalog_dir)
    name = "latest" if version == "latest" else entry_name(version.lstrip("v"))
    if name not in list(root):
        built = ", ".join(n for n in root if n != "latest")
        raise VboError(f"unknown version {version!r} in {catalog_dir}: built are {built}")
    entry = root[name]
    return CatalogVersion(entry.metadata.get("manifest_version", version), entry)


@dataclass
class CatalogFiles:
    """Every data file of every version of a built catalog."""

    rows: list[tuple[str, str, str]]  # (file_hash, key, version_id), one per content
    bucket_url: str
    cache_dir: str | None

    def cache(self):
        """The cache recorded for the catalog (``VBO_CACHE_DIR`` overrides)."""
        from .cache import open_cache

        return open_cache(self.cache_dir)

    def urls(self) -> dict[str, str]:
        """file_hash -> a URL serving that content."""
        from .release import bucket_url, object_url

        bucket = bucket_url(recorded=self.bucket_url)
        return {h: object_url(bucket, key, vid) for h, key, vid in self.rows}

    def suffixes(self) -> dict[str, str]:
        """file_hash -> the file's suffix in the cache."""
        return {h: Path(key).suffix or ".nwb" for h, key, _ in self.rows}


def catalog_files(catalog_dir: str | Path) -> CatalogFiles:
    """The data files of every built version, from the DuckDB index."""
    from .catalog import recorded
    from .index import connect

    settings = recorded(Path(catalog_dir))
    if not settings:
        raise VboError(
            f"{catalog_dir}: no catalog here; run `intake-vbo build --out {catalog_dir}`"
        )
    con = connect(Path(catalog_dir))
    try:
        rows = con.execute(
            "SELECT file_hash, any_value(key), any_value(version_id) FROM files GROUP BY file_hash"
        ).fetchall()
    finally:
        con.close()
    return CatalogFiles(rows, settings["bucket_url"], settings.get("cache_dir"))

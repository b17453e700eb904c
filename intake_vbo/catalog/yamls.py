"""Write the intake catalog YAMLs: a root catalog and one small catalog per version.

The YAMLs hold a few parameterised sources per version; the rows stay in Parquet and
DuckDB (a YAML entry per file would take seconds to open). Each catalog is built as
data and dumped by PyYAML, so any bucket URL or cache path (quotes, colons, non-ASCII)
is escaped as YAML needs. The root catalog records the settings of the build and the
catalog format that wrote it: a build by a newer format rewrites the catalog files
even when no manifest changed, so a lab's existing build gains new sources.
"""

from __future__ import annotations

from pathlib import Path

from ..base import fileops
from ..base.settings import local_dir
from .index import Partition
from .record import CATALOG_FORMAT, ROOT_CATALOG, CatalogSettings, entry_name, recorded_settings
from .release import KINDS, id_column, kind_label, version_key
from .schema import CATALOG_TABLES, FILE_TABLES

_HEADER = "# Visual Behavior Ophys: written by `intake-vbo build`; do not edit by hand.\n"


def _dump(doc: dict, comment: str = "") -> str:
    import yaml

    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    return _HEADER + comment + text


_IN_CATALOG = "{{ CATALOG_DIR }}/../"


def _in_catalog(path: str) -> str:
    """A partition path as a version catalog names it: relative to the catalog directory."""
    return _IN_CATALOG + path


def table_paths(root: Path, version: str) -> dict[str, Path]:
    """The Parquet partition of each table of ``version``, as its version catalog names them.

    Read from the small version YAML, so that serving one file needs no DuckDB.
    """
    import yaml

    text = (root / "versions" / f"{entry_name(version)}.yaml").read_text("utf-8")
    sources = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    found = {}
    for source in (sources.get("sources") or {}).values():
        args = source.get("args") or {}
        if source.get("driver") == "vbo_table" and str(args.get("path", "")).startswith(
            _IN_CATALOG
        ):
            found[args["table"]] = root / args["path"][len(_IN_CATALOG) :]
    return found


def version_catalog(version: str, parts: dict[str, Partition], bucket_url: str, cache_dir) -> dict:
    """The catalog of one version: its table sources and its parameterised NWB sources."""
    sources = {}
    for table in CATALOG_TABLES:
        if table in parts:
            sources[table] = {
                "description": f"{table} of release {version} ({parts[table].rows} rows)",
                "driver": "vbo_table",
                "args": {"table": table, "path": _in_catalog(parts[table].path)},
            }
    for kind in KINDS:
        ident = id_column(kind)
        args = {
            "kind": kind,
            "id": f"{{{{ {ident} }}}}",
            "version": version,
            "files": _in_catalog(parts["files"].path),
        }
        if "behavior_sessions" in parts:
            args["behavior_sessions"] = _in_catalog(parts["behavior_sessions"].path)
        sources[kind] = {
            "description": f"NWB file of one {kind_label(kind)} of release {version}, "
            "fetched into the cache on first use (or streamed, with stream=true)",
            "driver": "vbo_nwb",
            "parameters": {
                ident: {
                    "description": f"{ident}, as in the {kind}s table",
                    "type": "int",
                    "default": 0,
                },
                "stream": {
                    "description": "read by HTTP Range requests instead of downloading whole",
                    "type": "bool",
                    "default": False,
                },
            },
            "args": args
            | {"bucket_url": bucket_url, "cache_dir": cache_dir, "stream": "{{ stream }}"},
        }
        sources[f"{kind}_tables"] = _tables_source(kind, version, args, bucket_url, cache_dir)
    return {"metadata": {"version": 1, "manifest_version": version}, "sources": sources}


def _tables_source(kind: str, version: str, args: dict, bucket_url: str, cache_dir) -> dict:
    """The ``<kind>_tables`` source: one table of many files, one dask partition per file."""
    tables = FILE_TABLES[kind]
    label = kind_label(kind)
    return {
        "description": f"one table of many {label}s of release {version} as a dask DataFrame, "
        f"one partition per NWB file (tables: {', '.join(tables)})",
        "driver": "vbo_nwb_tables",
        "parameters": {
            "table": {
                "description": f"the {label}'s attribute to read: {', '.join(tables)}",
                "type": "str",
                "default": tables[0],
            },
            f"{kind}_ids": {
                "description": f"{kind}_ids to read; empty: every {label} file of the release",
                "type": "list",
                "default": [],
            },
            "stream": {
                "description": "read by HTTP Range requests instead of downloading whole",
                "type": "bool",
                "default": False,
            },
        },
        "args": {k: v for k, v in args.items() if k != "id"}
        | {"table": "{{ table }}", "ids": f"{{{{ {kind}_ids }}}}", "stream": "{{ stream }}"}
        | {"bucket_url": bucket_url, "cache_dir": cache_dir},
    }


def root_catalog(versions: list[str], bucket_url: str, cache_dir, etags: dict) -> dict:
    """The root catalog: ``latest`` and one nested catalog per version, and the settings."""
    settings = CatalogSettings(CATALOG_FORMAT, versions[-1], versions, bucket_url, cache_dir,
                               etags).as_dict()  # fmt: skip
    sources = {}
    for name, version in [("latest", versions[-1]), *((entry_name(v), v) for v in versions)]:
        latest = " (the latest built)" if name == "latest" else ""
        sources[name] = {
            "description": f"Visual Behavior Ophys release {version}{latest}",
            "driver": "yaml_file_cat",
            "args": {"path": f"{{{{ CATALOG_DIR }}}}/versions/{entry_name(version)}.yaml"},
        }
    return {"metadata": {"version": 1, "intake_vbo": settings}, "sources": sources}


def render(
    parts: list[Partition], bucket_url: str, cache_dir: str | None, etags: dict[str, str]
) -> dict[str, str]:
    """Every catalog file's text, keyed by its path relative to the catalog directory."""
    versions = sorted({p.version for p in parts}, key=version_key)
    texts = {}
    for version in versions:
        mine = {p.table: p for p in parts if p.version == version}
        doc = version_catalog(version, mine, bucket_url, cache_dir)
        texts[f"versions/{entry_name(version)}.yaml"] = _dump(doc)
    doc = root_catalog(versions, bucket_url, cache_dir, {v: etags[v] for v in versions})
    opening = (
        '# Open with intake.open_catalog("<this file>"); paths are relative to this directory,\n'
        "# so the whole directory can be moved or shared read-only.\n"
    )
    texts[ROOT_CATALOG] = _dump(doc, opening)
    return texts


def write_catalogs(
    root: Path,
    staging: Path,
    parts: list[Partition],
    bucket_url: str,
    cache_dir: str | None,
    etags: dict[str, str],
) -> list[str]:
    """Write the catalog files that changed, root catalog last; return their names.

    A file whose text is unchanged is not touched, so a no-op build changes nothing.
    """
    if not parts:
        return []
    # Without a new --cache-dir, keep what an earlier build recorded.
    cache_dir = recorded_cache_dir(root) if cache_dir is None else str(local_dir(cache_dir))
    texts = render(parts, bucket_url, cache_dir, etags)
    written = []
    for name in sorted(texts, key=lambda n: n == ROOT_CATALOG):
        target = root / name
        if target.exists() and target.read_text("utf-8") == texts[name]:
            continue
        tmp = staging / "catalogs" / name
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(texts[name], "utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        fileops.replace(tmp, target)
        written.append(name)
    return written


def recorded_cache_dir(root: Path) -> str | None:
    """The cache directory an earlier build recorded in ``root`` (None: none)."""
    found = recorded_settings(root)
    return found.cache_dir if found else None

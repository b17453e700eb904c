"""Write the intake catalog YAMLs: a root catalog and one small catalog per version.

The YAMLs hold a few parameterised sources per version; the rows stay in Parquet and
DuckDB (a YAML entry per file would take seconds to open). Each catalog is built as
data and dumped by PyYAML, so any bucket URL or cache path (quotes, colons, non-ASCII)
is escaped as YAML needs. The root catalog records the settings of the build and the
catalog format that wrote it: a build by a newer format rewrites the catalog files
even when no manifest changed, so a lab's existing build gains new sources.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import no_catalog
from .index import Part
from .release import DATA_FOLDERS, version_key
from .schema import CATALOG_TABLES

ROOT_CATALOG = "catalog.yaml"
# Bump when the catalog files change shape (sources, arguments, metadata).
CATALOG_FORMAT = 4  # 3: the NWB sources take `stream`; 4: the per-file table sources
_HEADER = "# Visual Behavior Ophys: written by `intake-vbo build`; do not edit by hand.\n"


def entry_name(version: str) -> str:
    """Catalog entry name of a version: ``1.1.0`` -> ``v1_1_0``."""
    return "v" + version.replace(".", "_")


def absolute(path: str) -> str:
    """A cache directory as recorded: absolute, user expanded."""
    return str(Path(path).expanduser().resolve())


def _dump(doc: dict, comment: str = "") -> str:
    import yaml

    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    return _HEADER + comment + text


def _in_catalog(path: str) -> str:
    """A partition path as a version catalog names it: relative to the catalog directory."""
    return "{{ CATALOG_DIR }}/../" + path


def version_catalog(version: str, parts: dict[str, Part], bucket_url: str, cache_dir) -> dict:
    """The catalog of one version: its table sources and its parameterised NWB sources."""
    sources = {}
    for table in CATALOG_TABLES:
        if table in parts:
            sources[table] = {
                "description": f"{table} of release {version} ({parts[table].rows} rows)",
                "driver": "vbo_table",
                "args": {"table": table, "path": _in_catalog(parts[table].path)},
            }
    for kind in DATA_FOLDERS:
        args = {
            "kind": kind,
            "id": f"{{{{ {kind}_id }}}}",
            "version": version,
            "files": _in_catalog(parts["files"].path),
        }
        if "behavior_sessions" in parts:
            args["behavior_sessions"] = _in_catalog(parts["behavior_sessions"].path)
        sources[kind] = {
            "description": f"NWB file of one {kind.replace('_', ' ')} of release {version}, "
            "fetched into the cache on first use (or streamed, with stream=true)",
            "driver": "vbo_nwb",
            "parameters": {
                f"{kind}_id": {
                    "description": f"{kind}_id, as in the {kind}s table",
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
    from .tablemeta import tables_of

    tables = tables_of(kind)
    label = kind.replace("_", " ")
    return {
        "description": f"one table of many {label}s of release {version} as a dask DataFrame, "
        f"one partition per NWB file (tables: {', '.join(tables)})",
        "driver": "vbo_nwb_tables",
        "parameters": {
            "table": {
                "description": f"the {label}'s attribute to read: {', '.join(tables)}",
                "type": "str",
                "default": tables[0] if kind == "ophys_experiment" else "trials",
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
    settings = {
        "format": CATALOG_FORMAT,
        "latest": versions[-1],
        "versions": versions,
        "bucket_url": bucket_url,
        "cache_dir": cache_dir,
        "manifest_etags": etags,
    }
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
    parts: list[Part], bucket_url: str, cache_dir: str | None, etags: dict[str, str]
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
    parts: list[Part],
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
    cache_dir = recorded(root).get("cache_dir") if cache_dir is None else absolute(cache_dir)
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
        os.replace(tmp, target)
        written.append(name)
    return written


def settings(root: str | Path) -> dict:
    """The settings a build recorded in ``root``; a one-line error if there is no catalog."""
    found = recorded(Path(root))
    if not found:
        raise no_catalog(root)
    return found


def recorded(root: Path) -> dict:
    """The settings the last build recorded in the root catalog (empty if none)."""
    import yaml

    path = Path(root) / ROOT_CATALOG
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    return (doc.get("metadata") or {}).get("intake_vbo") or {}

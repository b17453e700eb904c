"""Write the intake catalog YAMLs: a root catalog and one small catalog per version.

The YAMLs hold a few parameterised sources per version; the rows stay in Parquet and
DuckDB (a YAML entry per file would take seconds to open). Templates live in the
repository's ``catalogs/`` folder, installed as ``intake_vbo.catalogs``. They use
``[[ ]]``/``[% %]`` delimiters so that intake's own ``{{ CATALOG_DIR }}`` passes through.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .index import Part
from .release import version_key
from .schema import CATALOG_TABLES

ROOT_CATALOG = "catalog.yaml"


def entry_name(version: str) -> str:
    """Catalog entry name of a version: ``1.1.0`` -> ``v1_1_0``."""
    return "v" + version.replace(".", "_")


def _environment():
    import jinja2

    loader = jinja2.FunctionLoader(
        lambda name: resources.files("intake_vbo.catalogs").joinpath(name).read_text("utf-8")
    )
    env = jinja2.Environment(
        loader=loader,
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["entry_name"] = entry_name
    return env


def absolute(path: str) -> str:
    """A cache directory as recorded: absolute, user expanded."""
    return str(Path(path).expanduser().resolve())


def render(
    parts: list[Part], bucket_url: str, cache_dir: str | None, etags: dict[str, str]
) -> dict[str, str]:
    """Every catalog file's text, keyed by its path relative to the catalog directory."""
    env = _environment()
    versions = sorted({p.version for p in parts}, key=version_key)
    texts = {}
    for version in versions:
        mine = {p.table: p for p in parts if p.version == version}
        tables = {t: mine[t].path for t in CATALOG_TABLES if t in mine}
        texts[f"versions/{entry_name(version)}.yaml"] = env.get_template("version.yaml.j2").render(
            version=version,
            tables=tables,
            rows={t: mine[t].rows for t in tables},
            bucket_url=bucket_url,
            cache_dir=cache_dir,
        )
    texts[ROOT_CATALOG] = env.get_template("catalog.yaml.j2").render(
        versions=versions,
        latest=versions[-1],
        bucket_url=bucket_url,
        cache_dir=cache_dir,
        etags={v: etags[v] for v in versions},
    )
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


def recorded(root: Path) -> dict:
    """The settings the last build recorded in the root catalog (empty if none)."""
    import yaml

    path = Path(root) / ROOT_CATALOG
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    return (doc.get("metadata") or {}).get("intake_vbo") or {}

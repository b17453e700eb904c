"""intake-vbo: the Allen Visual Behavior Ophys release as intake catalogs and a DuckDB index.

Importing the package is cheap on purpose: the public names below load their modules
(and pandas, pyarrow, duckdb, requests) on first use.

Public API
----------
open_experiment(source), open_session(source)
    The analysis objects of a VBO NWB file (a path, an https URL or a file-like object),
    with AllenSDK's attributes, read lazily.
VisualBehaviorOphysProjectCache, BehaviorCloudCacheVersionException
    AllenSDK's project cache over a catalog: the tutorial with one import changed.
build(out, bucket_url=None, versions="all", cache_dir=None)
    Build or incrementally update a catalog directory.
list_manifests(bucket_url)
    The released manifest versions of a bucket.
diff(catalog_dir, a, b)
    What changed between two built versions.
connect(catalog_dir)
    The catalog's DuckDB index, read-only.
Cache, open_cache(recorded=None), fetch_many(cache, items)
    The verified, shared download cache.
verify(cache, urls=None, repair=False), adopt(cache, path, known)
    Look after a cache.
integer_ids(frame)
    A copy of a frame for printing, its float id columns and index shown as integers.
VboError
    The one error users see: one line naming what and where.
"""

from __future__ import annotations

from importlib import import_module

from .base import __version__

# public name -> the module that defines it
_PUBLIC = {
    "open_experiment": "nwb",
    "open_session": "nwb",
    "VisualBehaviorOphysProjectCache": "projectcache",
    "BehaviorCloudCacheVersionException": "projectcache",
    "build": "catalog.build",
    "list_manifests": "catalog.origin",
    "diff": "catalog.index",
    "connect": "catalog.index",
    "Cache": "transfer.cache",
    "open_cache": "transfer.cache",
    "fetch_many": "transfer.cache",
    "verify": "transfer.upkeep",
    "adopt": "transfer.upkeep",
    "integer_ids": "base.display",
    "VboError": "base.errors",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value  # once loaded, a plain attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))

"""What a build records about itself in the root catalog, as a typed record.

The root catalog (``catalog.yaml``) carries, under ``metadata.intake_vbo``, the settings
of the build that wrote it: the catalog format, the versions built (and the latest),
the bucket URL, the cache directory, and each version's manifest ETag. The build
writes them (:mod:`intake_vbo.catalog.yamls`) and every reader of a catalog reads them
here, as a :class:`CatalogSettings`.

>>> entry_name("1.1.0")
'v1_1_0'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..base.errors import no_catalog

ROOT_CATALOG = "catalog.yaml"
# Bump when the catalog files change shape (sources, arguments, metadata).
CATALOG_FORMAT = 4  # 3: the NWB sources take `stream`; 4: the per-file table sources


def entry_name(version: str) -> str:
    """Catalog entry name of a version: ``1.1.0`` -> ``v1_1_0``."""
    return "v" + version.replace(".", "_")


@dataclass(frozen=True)
class CatalogSettings:
    """The settings a build recorded in its root catalog.

    Attributes
    ----------
    format : int
        The catalog format that wrote the files (:data:`CATALOG_FORMAT` today).
    latest : str
        The newest version built.
    versions : list of str
        Every version built, oldest first.
    bucket_url : str
        Where the build read the release (``VBO_BUCKET_URL`` wins when serving).
    cache_dir : str or None
        The download cache recorded with ``--cache-dir`` (``VBO_CACHE_DIR`` wins).
    manifest_etags : dict
        Version -> the ETag of the manifest it was built from.
    """

    format: int
    latest: str
    versions: list[str]
    bucket_url: str
    cache_dir: str | None = None
    manifest_etags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The record as the root catalog stores it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> CatalogSettings:
        """The record from the root catalog's ``metadata.intake_vbo`` mapping."""
        return cls(
            format=int(doc.get("format") or 0),
            latest=str(doc.get("latest") or ""),
            versions=[str(v) for v in doc.get("versions") or []],
            bucket_url=str(doc.get("bucket_url") or ""),
            cache_dir=doc.get("cache_dir"),
            manifest_etags={str(k): str(v) for k, v in (doc.get("manifest_etags") or {}).items()},
        )


def recorded_settings(root: str | os.PathLike) -> CatalogSettings | None:
    """The settings the last build recorded in ``root``'s root catalog; None if none."""
    import yaml

    path = Path(root) / ROOT_CATALOG
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:  # libyaml's loader when there is one: 10x faster
        doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    found = (doc.get("metadata") or {}).get("intake_vbo")
    return CatalogSettings.from_dict(found) if found else None


def read_settings(root: str | os.PathLike) -> CatalogSettings:
    """The settings a build recorded in ``root``; a one-line error if there is no catalog."""
    found = recorded_settings(root)
    if found is None:
        raise no_catalog(root)
    return found

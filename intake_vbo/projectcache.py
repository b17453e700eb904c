"""AllenSDK's ``VisualBehaviorOphysProjectCache``, over a catalog: the tutorial, one import changed.

::

    from intake_vbo import VisualBehaviorOphysProjectCache
    cache = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=output_dir)
    cache = VisualBehaviorOphysProjectCache.from_catalog("/lab/vbo/catalog.yaml")
    cache = VisualBehaviorOphysProjectCache.from_local_cache("/data/vbo", use_static_cache=True)

Manifests keep AllenSDK's names (``visual-behavior-ophys_project_manifest_vX.Y.Z.json``);
"downloaded" manifests are the versions built in the catalog. Tables come from the
catalog's Parquet partitions, NWB files from the verified cache, and the getters return
intake-vbo's analysis objects, which close their file when collected.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .base import fileops
from .base.errors import VboError
from .base.settings import cache_dir as cache_root
from .base.settings import local_dir
from .catalog.origin import bucket_url, list_manifests
from .catalog.record import read_settings
from .catalog.release import MANIFEST_NAME, manifest_name, version_key

CATALOG_SUBDIR = "catalog"  # from_s3_cache builds its catalog here, inside cache_dir
# The manifest a cache directory served last, by name: AllenSDK's file, so that a directory
# either tool used goes on serving the same release in the other.
LAST_USED = "_manifest_last_used.txt"
# the tables whose row counts the notebook view shows, and how it names them
_SHOWN = {
    "behavior_sessions": "behavior sessions",
    "ophys_sessions": "ophys sessions",
    "ophys_experiments": "ophys experiments",
    "ophys_cells": "ophys cells",
    "files": "NWB files",
}


def _remembered(path: Path) -> str | None:
    """The version of the manifest last used, from its record; None if none or unreadable."""
    try:
        match = MANIFEST_NAME.fullmatch(path.read_text("utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return None
    return match.group(1) if match else None


class BehaviorCloudCacheVersionException(Exception):
    """AllenSDK raises this for manifests it cannot load (0.x); offered so that imports
    of the tutorial keep working. intake-vbo loads every version and never raises it."""


class VisualBehaviorOphysProjectCache:
    """The Visual Behavior Ophys release as AllenSDK's project cache presents it.

    Make one with :meth:`from_s3_cache` (builds or updates a catalog from the bucket),
    :meth:`from_catalog` (a built catalog, read-only) or :meth:`from_local_cache` (a
    read-only copy of the release on disk, read in place).
    """

    def __init__(self, catalog_dir: Path, writable: bool, last_used: Path | None = None,
                 bucket: str | None = None):  # fmt: skip
        self.catalog_dir = Path(catalog_dir)
        self._writable = writable
        self._last_used = last_used  # where the manifest served is remembered, if anywhere
        self._bucket = bucket  # a copy read in place wins over VBO_BUCKET_URL
        self._released: list[str] | None = None  # the bucket's versions, listed once
        self._version = self._built()[-1]

    @classmethod
    def from_s3_cache(cls, cache_dir: str | Path) -> VisualBehaviorOphysProjectCache:
        """Build (or update) a catalog in ``<cache_dir>/catalog`` and serve a manifest.

        An empty ``cache_dir`` serves the latest release. One used before serves the
        manifest last used there (``load_manifest`` remembers it, in AllenSDK's
        ``_manifest_last_used.txt``), so an analysis never switches release under its
        feet, and a one-line warning names the newer manifest the bucket has.

        Other versions are built when :meth:`load_manifest` asks for them, so a first
        call costs one manifest and its tables, as AllenSDK's does. NWB files go to
        ``cache_dir`` unless ``VBO_CACHE_DIR`` says otherwise; ``VBO_BUCKET_URL`` names
        a mirror or a local S3-compatible server.
        """
        from .catalog.build import build

        cache_dir = local_dir(cache_dir)
        out, last_used = cache_dir / CATALOG_SUBDIR, cache_dir / LAST_USED
        pinned = _remembered(last_used)
        build(out, None, pinned or "latest", cache_dir=str(cache_dir))
        return cls._pinned(cls(out, writable=True, last_used=last_used), pinned, cache_dir)

    @classmethod
    def from_local_cache(
        cls,
        cache_dir: str | Path,
        use_static_cache: bool = False,
        work_dir: str | Path | None = None,
    ) -> VisualBehaviorOphysProjectCache:
        """Serve a read-only copy of the release in place, as AllenSDK's local modes do.

        Parameters
        ----------
        cache_dir : str or path
            The copy. ``use_static_cache=True``: the bucket's layout
            (``visual-behavior-ophys/manifests/...``, ``project_metadata/``, ...: a
            mounted bucket, a Code Ocean data asset); ``False``: an AllenSDK download
            cache (``visual-behavior-ophys-<version>/...``, ``_manifest_last_used.txt``).
        use_static_cache : bool
            Which layout ``cache_dir`` holds (AllenSDK's argument).
        work_dir : str or path, optional
            Where the catalog and records go (else ``VBO_CACHE_DIR``, else the user
            cache directory), under a name derived from the copy's path.

        Nothing is ever written under ``cache_dir``, and nothing is downloaded: NWB
        files are opened on the copy, a file it lacks is a one-line error. Every
        manifest on the copy is listed; a version whose metadata files the copy holds
        (with the manifest's hashes) loads and compares, others are a one-line error.
        The manifest served is the one last used (remembered in the work directory,
        else the copy's ``_manifest_last_used.txt``), else the latest.
        """
        from .catalog import localcopy
        from .catalog.build import build

        copy = local_dir(cache_dir)
        bucket = bucket_url(str(copy))
        found = localcopy.layout(copy)
        if found != (localcopy.BUCKET_LAYOUT if use_static_cache else localcopy.ALLENSDK_LAYOUT):
            kind = (
                "the bucket's layout" if found == localcopy.BUCKET_LAYOUT else "an AllenSDK cache"
            )
            raise VboError(
                f"{copy} holds {kind}: open it with use_static_cache={not use_static_cache}"
            )
        home = localcopy.catalog_home(copy, local_dir(work_dir) if work_dir else cache_root())
        out, last_used = home / CATALOG_SUBDIR, home / LAST_USED
        pinned = _remembered(last_used) or _remembered(copy / LAST_USED)
        build(out, bucket, pinned or "latest", cache_dir=str(home))
        cache = cls(out, writable=True, last_used=last_used, bucket=bucket)
        return cls._pinned(cache, pinned, copy)

    @staticmethod
    def _pinned(cache, pinned: str | None, where: Path):
        """``cache`` serving ``pinned`` (warning of a newer release), else the latest."""
        if pinned is None:
            cache._remember()
            return cache
        cache._version = pinned
        latest = cache.latest_manifest_file()
        if version_key(cache._parse(latest)) > version_key(pinned):
            warnings.warn(
                f"{where}: serving {manifest_name(pinned)}, the manifest last used here; "
                f"a newer one exists, {latest} (load_latest_manifest() serves it)",
                UserWarning,
                stacklevel=3,
            )
        return cache

    @classmethod
    def from_catalog(cls, path: str | Path) -> VisualBehaviorOphysProjectCache:
        """Open a built catalog (its directory or its ``catalog.yaml``), read-only."""
        path = Path(path).expanduser()
        return cls(path.parent if path.suffix in (".yaml", ".yml") else path, writable=False)

    def __repr__(self) -> str:
        from .base.display import text_line

        return text_line(type(self).__name__, [*self._manifest_rows(), self._where()])

    def _manifest_rows(self) -> list[tuple[str, str]]:
        """The manifest served, the versions built, and (if listed) those released."""
        rows = [
            ("current manifest", self.current_manifest()),
            ("versions built", ", ".join(self._built())),
        ]
        if self._released is not None:  # never listed here: a repr asks no server
            rows.append(("versions released", ", ".join(self._released)))
        return rows

    def _where(self) -> tuple[str, str]:
        return ("catalog", str(self.catalog_dir))

    def _repr_html_(self) -> str:
        """What a notebook shows: the manifest served, those built, and the tables' sizes.

        Cheap: the catalog's record and the index's partition counts; the bucket is not
        asked (its manifests are shown once :meth:`list_manifest_file_names` listed them).
        """
        from .base.display import html_card, html_table
        from .catalog.index import connect, partitions

        con = connect(self.catalog_dir)
        try:
            counts = {p.table: p.rows for p in partitions(con, self._version)}
        finally:
            con.close()
        shown = [(label, counts[table]) for table, label in _SHOWN.items() if table in counts]
        rows = [*self._manifest_rows(), *shown, self._where(), ("writable", self._writable)]
        return html_card(html_table(type(self).__name__, rows))

    # manifests ---------------------------------------------------------------

    def _built(self) -> list[str]:
        return sorted(read_settings(self.catalog_dir).versions, key=version_key)

    def list_manifest_file_names(self) -> list[str]:
        """Every released manifest (from the bucket; for a read-only catalog, its versions)."""
        if self._released is None:
            if self._writable:
                recorded = read_settings(self.catalog_dir).bucket_url
                self._released = list(list_manifests(bucket_url(self._bucket, recorded)))
            else:
                self._released = self._built()
        return [manifest_name(v) for v in self._released]

    def latest_manifest_file(self) -> str:
        """The name of the latest released manifest."""
        return self.list_manifest_file_names()[-1]

    def list_all_downloaded_manifests(self) -> list[str]:
        """The manifests built in the catalog, oldest first."""
        return [manifest_name(v) for v in self._built()]

    def latest_downloaded_manifest_file(self) -> str:
        """The name of the latest manifest built in the catalog."""
        return manifest_name(self._built()[-1])

    def current_manifest(self) -> str:
        """The manifest whose tables and files this cache serves now."""
        return manifest_name(self._version)

    def load_manifest(self, manifest_name: str) -> None:
        """Serve the tables and files of another manifest (built first if need be).

        A cache made by :meth:`from_s3_cache` remembers it: the next one on the same
        directory serves it too.
        """
        self._version = self._ensure(self._parse(manifest_name))
        self._remember()

    def _remember(self) -> None:
        """Record the manifest served now as the directory's last used (atomically)."""
        if self._last_used is None:
            return
        tmp = self._last_used.with_name(f".{LAST_USED}.{os.getpid()}")
        tmp.write_text(manifest_name(self._version) + "\n", "utf-8")
        fileops.replace(tmp, self._last_used)

    def load_latest_manifest(self) -> None:
        """Serve the latest released manifest."""
        self.load_manifest(self.latest_manifest_file())

    def compare_manifests(self, manifest_0_name: str, manifest_1_name: str) -> str:
        """What changed from one manifest to the other: tables, then files.

        Returns
        -------
        str
            Readable lines, empty only when nothing changed.
        """
        from .catalog.index import diff, diff_report

        a, b = (self._ensure(self._parse(n)) for n in (manifest_0_name, manifest_1_name))
        objects, tables = diff(self.catalog_dir, a, b)
        changed = objects or any(
            t["rows_added"] or t["rows_removed"] or t["rows_changed"] or t["columns_added"]
            or t["columns_removed"] for t in tables
        )  # fmt: skip
        if not changed:
            return ""
        lines = [f"Changes going from\n{manifest_0_name}\nto\n{manifest_1_name}\n"]
        lines.append(diff_report(a, b, objects, tables))
        lines += [f"{key} {change}" for key, _, change in objects]
        return "\n".join(lines) + "\n"

    def _parse(self, name: str) -> str:
        match = MANIFEST_NAME.fullmatch(str(name))
        if not match:
            raise VboError(f"{name!r} is not a manifest name like {manifest_name('1.1.0')!r}")
        return match.group(1)

    def _ensure(self, version: str) -> str:
        """``version``, built into the catalog first if it is not yet (and may be)."""
        if version in self._built():
            return version
        if not self._writable:
            built = ", ".join(self.list_all_downloaded_manifests())
            raise VboError(f"{manifest_name(version)} is not in {self.catalog_dir}: {built}")
        from .catalog.build import build

        # VBO_BUCKET_URL (set since the catalog was made, say) wins over the recorded bucket
        recorded = read_settings(self.catalog_dir).bucket_url
        build(self.catalog_dir, bucket_url(self._bucket, recorded), version)
        return version

    # tables --------------------------------------------------------------------

    def _table(self, table: str, suppress=None):
        from .catalog.index import read_part
        from .drivers.frames import to_pandas
        from .drivers.resolve import catalog_version

        partitions = catalog_version(self.catalog_dir, self._version).partitions
        if table not in partitions:
            raise VboError(f"release {self._version} has no {table} table")
        frame = to_pandas(table, read_part(partitions[table]))
        return frame.drop(columns=[c for c in suppress or () if c in frame.columns])

    def get_behavior_session_table(self, suppress=None, as_df=True, include_ophys_data=True,
                                   include_trial_metrics=False):  # fmt: skip
        """The behavior sessions, indexed by behavior_session_id.

        AllenSDK's keyword arguments are accepted; like its S3 cache, only ``suppress``
        (columns to drop) changes the result.
        """
        return self._table("behavior_sessions", suppress)

    def get_ophys_session_table(self, suppress=None, index_column="ophys_session_id",
                                as_df=True, include_behavior_data=True):  # fmt: skip
        """The ophys sessions, indexed by ophys_session_id (see
        :meth:`get_behavior_session_table` for the keyword arguments)."""
        return self._table("ophys_sessions", suppress)

    def get_ophys_experiment_table(self, suppress=None, as_df=True):
        """The ophys experiments, indexed by ophys_experiment_id."""
        return self._table("ophys_experiments", suppress)

    def get_ophys_cells_table(self):
        """The cells (ROIs) of every experiment, indexed by cell_roi_id (1.0.0 and later)."""
        return self._table("ophys_cells")

    # NWB files -------------------------------------------------------------------

    def _fetch(self, kind: str, ident: int) -> str:
        from .drivers.resolve import catalog_version

        version = catalog_version(self.catalog_dir, self._version, self._bucket)
        by_kind = {"ophys_experiment": "experiments", "behavior_session": "sessions"}
        if self._bucket is not None:  # a copy: the file is opened where it lies
            ((label, path, why),) = version.in_place(**{by_kind[kind]: [int(ident)]})
            if path is None:
                raise VboError(why)
            return str(path)
        from .transfer.cache import fetch_one  # requests and threads: only to download

        ((label, url, file_hash),) = version.items(**{by_kind[kind]: [int(ident)]})
        return str(fetch_one(version.cache(), label, url, file_hash))  # with a bar

    def get_behavior_session(self, behavior_session_id: int):
        """The behavior session's analysis object, its NWB file fetched and verified first.

        A session recorded with imaging is read from its first experiment's file, as
        AllenSDK does.
        """
        from .nwb import open_session

        return open_session(self._fetch("behavior_session", behavior_session_id))

    def get_behavior_ophys_experiment(self, ophys_experiment_id: int):
        """The ophys experiment's analysis object, its NWB file fetched and verified first."""
        from .nwb import open_experiment

        return open_experiment(self._fetch("ophys_experiment", ophys_experiment_id))

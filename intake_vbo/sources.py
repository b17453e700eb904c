"""The intake drivers: metadata tables from Parquet, and NWB files fetched lazily.

Registered under the ``intake.drivers`` entry point as ``vbo_table`` and ``vbo_nwb``.
Both read the Parquet partitions their catalog names, never the DuckDB file, so
readers take no lock and a build in progress never blocks them.
"""

from __future__ import annotations

import weakref

from intake.source.base import DataSource, Schema

from . import __version__
from .errors import VboError
from .resolve import LABELS


class TableSource(DataSource):
    """One metadata table of one release version, as a pandas DataFrame.

    Parameters
    ----------
    table : str
        ``behavior_sessions``, ``ophys_sessions``, ``ophys_experiments``,
        ``ophys_cells`` or ``files``.
    path : str
        The table's Parquet partition for the version.
    """

    container = "dataframe"
    name = "vbo_table"
    version = __version__
    partition_access = False

    def __init__(self, table: str, path: str, metadata: dict | None = None):
        super().__init__(metadata=metadata)
        self.table = table
        self.path = str(path)

    def _get_schema(self) -> Schema:
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(self.path)
        except (OSError, ValueError) as exc:
            raise VboError(f"{self.path}: cannot read catalog table ({exc})") from None
        arrow = meta.schema.to_arrow_schema()
        return Schema(
            dtype={f.name: str(f.type) for f in arrow},
            shape=(meta.num_rows, len(arrow)),
            npartitions=1,
            extra_metadata={"index": _index_column(self.table)},
        )

    def _get_partition(self, i: int):
        return self.read()

    def read(self):
        """The table as a DataFrame indexed as AllenSDK indexes it."""
        from .frames import to_pandas
        from .index import read_part

        return to_pandas(self.table, read_part(self.path))

    def to_dask(self):
        """The table as a one-partition dask DataFrame."""
        import dask.dataframe as dd

        return dd.from_pandas(self.read(), npartitions=1)


def _index_column(table: str) -> str:
    from .frames import FRAME_INDEX

    return FRAME_INDEX[table]


class NWBSource(DataSource):
    """The NWB file of one behavior session or ophys experiment, fetched on first use.

    Parameters
    ----------
    kind : str
        ``behavior_session`` or ``ophys_experiment``.
    id : int
        The behavior_session_id or ophys_experiment_id.
    version : str
        The release version whose manifest names the file.
    files : str
        The version's ``files`` Parquet partition.
    bucket_url : str
        The bucket URL recorded at build; ``VBO_BUCKET_URL`` overrides it.
    cache_dir : str, optional
        The cache recorded at build; ``VBO_CACHE_DIR`` overrides it.
    behavior_sessions : str, optional
        The version's behavior table partition, to serve a session recorded with
        imaging by the NWB of its first ophys experiment, as AllenSDK does.
    """

    container = "python"
    name = "vbo_nwb"
    version = __version__
    partition_access = False

    def __init__(
        self,
        kind: str,
        id: int,
        version: str,
        files: str,
        bucket_url: str,
        cache_dir: str | None = None,
        behavior_sessions: str | None = None,
        metadata: dict | None = None,
    ):
        super().__init__(metadata=metadata)
        if kind not in LABELS:
            raise VboError(f"NWB source: unknown kind {kind!r}")
        self.kind, self.release_version = kind, str(version)
        self.id = _as_id(id, f"{kind}_id")
        self.files, self.behavior_sessions = files, behavior_sessions
        self.bucket_url, self.cache_dir = bucket_url, cache_dir
        self._row: dict | None = None
        # Objects read() returned, closed with the source; held weakly, so an object
        # the user drops is collected (and closes its file) without waiting for us.
        self._views: weakref.WeakSet = weakref.WeakSet()

    def file_entry(self) -> dict:
        """The manifest entry of this file: file_id, key, version_id, file_hash, url."""
        if self._row is None:
            self._row = self._resolve()
        return self._row

    def _resolve(self) -> dict:
        from .resolve import resolve_files

        found = resolve_files(
            self.files, self.behavior_sessions, self.kind, [self.id], self.release_version
        )
        return found[self.id]

    def cache(self):
        """The cache this source fetches into."""
        from .cache import open_cache

        return open_cache(self.cache_dir)

    def url(self) -> str:
        """Where the file is fetched from: the bucket (or ``VBO_BUCKET_URL``) at its version."""
        from .release import bucket_url, object_url

        entry = self.file_entry()
        return object_url(bucket_url(recorded=self.bucket_url), entry["key"], entry["version_id"])

    def fetch(self) -> str:
        """Download the file into the cache if needed (verified) and return its local path."""
        return str(self.cache().fetch(self.url(), self.file_entry()["file_hash"]))

    def _get_schema(self) -> Schema:
        entry = self.file_entry()
        cache = self.cache()
        extra = dict(entry, version=self.release_version, cached=cache.has(entry["file_hash"]))
        extra["path"] = str(cache.path(entry["file_hash"]))
        return Schema(dtype=None, shape=None, npartitions=1, extra_metadata=extra)

    def discover(self) -> dict:
        """Key, version id, hash and whether the file is cached now, without downloading."""
        self._schema = None  # "cached" changes under us: never serve a stale answer
        return super().discover()

    def describe(self) -> dict:
        """intake's description plus the file: key, version id, hash, cached or not."""
        info = super().describe()
        try:
            info["file"] = self.discover()["metadata"]
        except VboError as exc:  # describing must work for any id, even one not released
            info["file"] = {"error": str(exc)}
        return info

    def _get_partition(self, i: int):
        return self.read()

    def read(self):
        """The analysis object of the file, fetched and verified first.

        A :class:`~intake_vbo.nwb.experiment.BehaviorOphysExperiment` for an ophys
        experiment, a :class:`~intake_vbo.nwb.session.BehaviorSession` for a behavior
        session; each call returns a new object owning its own file handle, and
        :meth:`close` closes every object this source returned (``.nwbfile`` on the
        object gives the pynwb NWBFile).
        """
        from .nwb import open_experiment, open_session

        opener = open_experiment if self.kind == "ophys_experiment" else open_session
        view = opener(self.fetch())
        self._views.add(view)
        return view

    def _close(self) -> None:
        for view in list(self._views):
            view.close()
        self._views.clear()


def _as_id(value, name: str) -> int:
    """An integer id from a parameter (intake renders templated args as text)."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise VboError(f"{name} {value!r} is not an integer id") from None

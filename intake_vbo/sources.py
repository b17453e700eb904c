"""The intake drivers: metadata tables from Parquet, NWB files fetched lazily, and one
table of many NWB files as a dask DataFrame.

Registered under the ``intake.drivers`` entry point as ``vbo_table``, ``vbo_nwb`` and
``vbo_nwb_tables``. They read the Parquet partitions their catalog names, never the
DuckDB file, so readers take no lock and a build in progress never blocks them.
"""

from __future__ import annotations

import warnings
import weakref

from intake.source.base import DataSource, Schema

from . import __version__
from .errors import VboError
from .resolve import LABELS

# intake 2.0 warns this for every string parameter value, shell command or not
# (intake.catalog.utils.expand_defaults); ours never are. Loaded with the catalog's
# drivers, so before any of our sources is made.
warnings.filterwarnings(
    "ignore", "Shell command not executed due to getshell=False", UserWarning, "intake"
)


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


class _VersionFiles(DataSource):
    """What both NWB drivers share: a version's files, where they are fetched and kept."""

    def _locate(self, kind, version, files, behavior_sessions, bucket_url, cache_dir, stream):
        if kind not in LABELS:
            raise VboError(f"{self.name} source: unknown kind {kind!r}")
        self.kind, self.release_version = kind, str(version)
        self.files, self.behavior_sessions = files, behavior_sessions
        self.bucket_url, self.cache_dir = bucket_url, cache_dir
        self.stream = _as_bool(stream, "stream")

    def _entries(self, ids) -> dict[int, dict]:
        """The manifest entry of each id (every file of the kind for None), read at once."""
        from .resolve import resolve_files

        return resolve_files(
            self.files, self.behavior_sessions, self.kind, ids, self.release_version
        )

    def _url(self, entry: dict) -> str:
        """Where a file is fetched from: the bucket (or ``VBO_BUCKET_URL``) at its version."""
        from .release import bucket_url, object_url

        return object_url(bucket_url(recorded=self.bucket_url), entry["key"], entry["version_id"])


class NWBSource(_VersionFiles):
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
    stream : bool
        ``read()`` streams the file by HTTP Range requests instead of downloading it
        (blocks kept under the cache; a complete file is verified and promoted into
        it). A file already in the cache is opened from there either way.
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
        stream: bool | str = False,
        metadata: dict | None = None,
    ):
        super().__init__(metadata=metadata)
        self._locate(kind, version, files, behavior_sessions, bucket_url, cache_dir, stream)
        self.id = _as_id(id, f"{kind}_id")
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
        return self._entries([self.id])[self.id]

    def cache(self):
        """The cache this source fetches into."""
        from .cache import open_cache

        return open_cache(self.cache_dir)

    def url(self) -> str:
        """Where the file is fetched from: the bucket (or ``VBO_BUCKET_URL``) at its version."""
        return self._url(self.file_entry())

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
        """The analysis object of the file, fetched and verified first (or streamed).

        A :class:`~intake_vbo.nwb.experiment.BehaviorOphysExperiment` for an ophys
        experiment, a :class:`~intake_vbo.nwb.session.BehaviorSession` for a behavior
        session; each call returns a new object owning its own file handle, and
        :meth:`close` closes every object this source returned (``.nwbfile`` on the
        object gives the pynwb NWBFile).
        """
        from .nwb import open_experiment, open_session

        opener = open_experiment if self.kind == "ophys_experiment" else open_session
        cached = self.cache().has(self.file_entry()["file_hash"])
        view = opener(self.open_stream() if self.stream and not cached else self.fetch())
        self._views.add(view)
        return view

    def open_stream(self):
        """The file as a binary file-like object: the cache's copy, else streamed.

        Streamed by HTTP Range requests through the block store under the cache,
        keyed by the file's hash; once its blocks cover it, the file is verified and
        promoted into the cache.
        """
        from .ranges import open_url

        cache = self.cache()
        return open_url(self.url(), self.file_entry()["file_hash"], cache.root)

    def _close(self) -> None:
        for view in list(self._views):
            view.close()
        self._views.clear()


class NWBTablesSource(_VersionFiles):
    """One table of many sessions or experiments: a dask DataFrame, one partition per file.

    Each partition is the objects' attribute (``dff_traces``, ``trials``, ...) of one
    file, in the shape :mod:`intake_vbo.tablemeta` declares, plus the file's id column.
    The partitions are fetched (or streamed) and read inside the tasks, on whichever
    worker runs them; the meta is known without opening any file.

    Parameters
    ----------
    kind : str
        ``behavior_session`` or ``ophys_experiment``.
    table : str
        One of ``tablemeta.tables_of(kind)``.
    ids : list of int, optional
        The behavior_session_ids or ophys_experiment_ids; empty or None for every file
        of that kind in the version.
    version, files, bucket_url, cache_dir, behavior_sessions, stream
        As for :class:`NWBSource`. The bucket URL and the cache directory are settled
        where the graph is built (``VBO_BUCKET_URL`` and ``VBO_CACHE_DIR`` there win)
        and travel in each task, so every worker must see the same cache path.
    """

    container = "dataframe"
    name = "vbo_nwb_tables"
    version = __version__
    partition_access = True

    def __init__(
        self,
        kind: str,
        table: str,
        ids=None,
        version: str = "",
        files: str = "",
        bucket_url: str = "",
        cache_dir: str | None = None,
        behavior_sessions: str | None = None,
        stream: bool | str = False,
        metadata: dict | None = None,
    ):
        from .tablemeta import check_table

        super().__init__(metadata=metadata)
        self._locate(kind, version, files, behavior_sessions, bucket_url, cache_dir, stream)
        check_table(table, kind)
        self.table = table
        self.ids = _as_ids(ids, f"{kind}_ids")
        self._parts: list | None = None

    def file_parts(self) -> list:
        """One :class:`~intake_vbo.partitions.FilePart` per file, every id resolved.

        The version's files table is read once, whatever the number of ids; an id the
        version lacks is a one-line `VboError` before any file is touched.
        """
        if self._parts is None:
            from .cache import cache_dir
            from .partitions import FilePart

            root = str(cache_dir(self.cache_dir))
            self._parts = [
                FilePart(self.kind, self.table, ident, self._url(e), e["file_hash"], root,
                         self.stream)
                for ident, e in self._entries(self.ids).items()
            ]  # fmt: skip
        return self._parts

    def _meta(self):
        from .tablemeta import empty

        return empty(self.table, self.kind)

    def _get_schema(self) -> Schema:
        from .cache import Cache

        parts = self.file_parts()
        root = parts[0].cache_root if parts else None
        paths = [Cache(root).path(h) for h in dict.fromkeys(p.file_hash for p in parts)]
        sizes = [path.stat().st_size for path in paths if path.is_file()]
        meta = self._meta()
        extra = dict(kind=self.kind, table=self.table, version=self.release_version,
                     index=meta.index.name, files=len(paths), cached=len(sizes),
                     cached_bytes=sum(sizes), cache=root)  # fmt: skip
        return Schema(
            dtype={name: str(dtype) for name, dtype in meta.dtypes.items()},
            shape=(None, len(meta.columns)),
            npartitions=len(parts),
            extra_metadata=extra,
        )

    def discover(self) -> dict:
        """Columns, dtypes, how many files and how many are cached (bytes on disk).

        Opens no file: the meta is declared and the cache is looked at, not read.
        """
        self._schema = None  # "cached" changes under us
        return super().discover()

    def _get_partition(self, i: int):
        from .partitions import read_partition

        return read_partition(self.file_parts()[i])

    def read(self):
        """Every file's table, concatenated in pandas (for small selections)."""
        import pandas as pd

        from .partitions import read_partition

        frames = [read_partition(part) for part in self.file_parts()]
        return pd.concat(frames) if frames else self._meta()

    def to_dask(self):
        """A lazy dask DataFrame, one partition per file, its meta declared.

        Built with ``dataframe.convert-string`` off, so that array-per-row columns stay
        ``object`` holding numpy arrays whatever the dask configuration.
        """
        import dask
        import dask.dataframe as dd

        from .partitions import read_partition

        parts = self.file_parts()
        with dask.config.set({"dataframe.convert-string": False}):
            if not parts:
                return dd.from_pandas(self._meta(), npartitions=1)
            return dd.from_map(
                read_partition, parts, meta=self._meta(), label=f"vbo-{self.table}",
                enforce_metadata=False,
            )  # fmt: skip


def _as_ids(value, name: str) -> list[int] | None:
    """A list of integer ids from a parameter; None (every file) when empty."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, str):  # intake may render the list as its text
        value = [v.strip(" '\"") for v in value.strip().strip("[]()").split(",")]
    try:
        values = list(value)
    except TypeError:
        values = [value]
    ids = [_as_id(v, name.removesuffix("s")) for v in values if str(v).strip()]
    return list(dict.fromkeys(ids)) or None


def _as_bool(value, name: str) -> bool:
    """A boolean parameter (intake may render it as text)."""
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise VboError(f"{name} {value!r} is not true or false")


def _as_id(value, name: str) -> int:
    """An integer id from a parameter (intake renders templated args as text)."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise VboError(f"{name} {value!r} is not an integer id") from None

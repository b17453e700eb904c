"""The ``vbo_nwb`` driver: the NWB file of one behavior session or ophys experiment.

The file is fetched into the verified cache on first use, or streamed by Range
requests with ``stream=True``; ``read()`` returns the analysis object
(:mod:`intake_vbo.nwb`). :class:`VersionFiles` is what it shares with the per-file
table driver (:mod:`intake_vbo.drivers.filetables`): where a version's files are
listed, fetched and kept.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from intake.source.base import DataSource, Schema

from ..base import __version__
from ..base.errors import VboError
from ..catalog.origin import bucket_url, copy_root, locate
from ..catalog.release import KINDS, kind_label
from ..transfer.cache import open_cache
from ..transfer.inplace import url_path
from ..transfer.opener import open_url
from .params import as_bool, as_id
from .resolve import resolve_files


class VersionFiles(DataSource):
    """What both NWB drivers share: a version's files, where they are fetched and kept."""

    def _locate(self, kind, version, files, behavior_sessions, bucket_url, cache_dir, stream):
        if kind not in KINDS:
            raise VboError(f"{self.name} source: unknown kind {kind!r}")
        self.kind, self.release_version = kind, str(version)
        self.files, self.behavior_sessions = files, behavior_sessions
        self.bucket_url, self.cache_dir = bucket_url, cache_dir
        self.stream = as_bool(stream, "stream")

    def _entries(self, ids) -> dict[int, dict]:
        """The manifest entry of each id (every file of the kind for None), read at once."""
        return resolve_files(
            self.files, self.behavior_sessions, self.kind, ids, self.release_version
        )

    def _url(self, entry: dict) -> str:
        """Where a file is read: the bucket (or ``VBO_BUCKET_URL``) at its version, or the
        ``file://`` URL of the file on a copy (opened in place)."""
        bucket = bucket_url(recorded=self.bucket_url)
        return locate(bucket, entry["key"], entry["version_id"], self.release_version,
                      entry["file_hash"])  # fmt: skip

    def in_place(self) -> bool:
        """Whether the files are read in place from a copy of the release on disk."""
        return copy_root(bucket_url(recorded=self.bucket_url)) is not None


class NWBSource(VersionFiles):
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
        self.id = as_id(id, f"{kind}_id")
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
        return open_cache(self.cache_dir)

    def url(self) -> str:
        """Where the file is fetched from: the bucket (or ``VBO_BUCKET_URL``) at its version."""
        return self._url(self.file_entry())

    def fetch(self) -> str:
        """Download the file into the cache if needed (verified) and return its local path.

        On a copy of the release, the file's path on the copy (checked, never copied).
        """
        return str(self._source(stream=False))

    def _get_schema(self) -> Schema:
        entry = self.file_entry()
        extra = dict(entry, version=self.release_version)
        if self.in_place():  # on a copy: "cached" means the copy holds it
            try:
                extra.update(in_place=True, cached=True, path=str(url_path(self.url())))
            except VboError as exc:  # missing, or another upload: say why, do not fail
                extra.update(in_place=True, cached=False, error=str(exc))
        else:
            cache = self.cache()
            extra.update(
                cached=cache.has(entry["file_hash"]), path=str(cache.path(entry["file_hash"]))
            )
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
        session; each call returns a new object owning its own file handle (and the
        stream it reads, when streamed), and :meth:`close` closes every object this
        source returned (``.nwbfile`` on the object gives the pynwb NWBFile).
        """
        from ..nwb import open_experiment, open_session

        opener = open_experiment if self.kind == "ophys_experiment" else open_session
        view = opener(self._source(self.stream), close_source=True)
        self._views.add(view)
        return view

    def open_stream(self):
        """The file as a binary file-like object: the cache's copy, else streamed.

        Streamed by HTTP Range requests through the block store under the cache,
        keyed by the file's hash; once its blocks cover it, the file is verified and
        promoted into the cache. The caller closes it.
        """
        source = self._source(stream=True)
        return open(source, "rb") if isinstance(source, Path) else source

    def _source(self, stream: bool):
        """The cache's path of the file, or (streaming, not cached) a StreamFile over it;
        on a copy of the release, the file's path on the copy."""
        label = f"{kind_label(self.kind)} {self.id}"  # names a whole download's bar
        file_hash = self.file_entry()["file_hash"]
        return open_url(self.url(), file_hash, self.cache(), stream=stream, label=label)

    def _close(self) -> None:
        for view in list(self._views):
            view.close()
        self._views.clear()

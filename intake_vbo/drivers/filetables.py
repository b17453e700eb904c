"""The ``vbo_nwb_tables`` driver: one table of many NWB files as a dask DataFrame.

One partition per file; each partition is a :class:`~intake_vbo.drivers.tasks.FileTask`
run on whichever worker the scheduler picks, its shape declared in
:mod:`intake_vbo.drivers.tablemeta`, so the meta is known without opening any file.
"""

from __future__ import annotations

from intake.source.base import Schema

from ..base import __version__
from ..base.progress import progress_iter
from ..base.settings import cache_dir
from ..transfer.inplace import is_file_url, url_path
from ..transfer.store import Store
from .nwbsource import VersionFiles
from .params import as_ids
from .tablemeta import check_table, empty
from .tasks import FileTask, read_task


class NWBTablesSource(VersionFiles):
    """One table of many sessions or experiments: a dask DataFrame, one partition per file.

    Each partition is the objects' attribute (``dff_traces``, ``trials``, ...) of one
    file, in the shape :mod:`intake_vbo.drivers.tablemeta` declares, plus the file's id column.
    The partitions are fetched (or streamed) and read inside the tasks, on whichever
    worker runs them; the meta is known without opening any file.

    Parameters
    ----------
    kind : str
        ``behavior_session`` or ``ophys_experiment``.
    table : str
        One of ``intake_vbo.catalog.schema.FILE_TABLES[kind]``.
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
        super().__init__(metadata=metadata)
        self._locate(kind, version, files, behavior_sessions, bucket_url, cache_dir, stream)
        check_table(table, kind)
        self.table = table
        self.ids = as_ids(ids, f"{kind}_ids")
        self._tasks: list[FileTask] | None = None

    def file_tasks(self) -> list[FileTask]:
        """One :class:`~intake_vbo.drivers.tasks.FileTask` per file, every id resolved.

        The version's files table is read once, whatever the number of ids; an id the
        version lacks is a one-line `VboError` before any file is touched.
        """
        if self._tasks is None:
            root = str(cache_dir(self.cache_dir))
            self._tasks = [
                FileTask(self.kind, self.table, ident, self._url(e), e["file_hash"], root,
                         self.stream)
                for ident, e in self._entries(self.ids).items()
            ]  # fmt: skip
        return self._tasks

    def _meta(self):
        return empty(self.table, self.kind)

    def _get_schema(self) -> Schema:
        tasks = self.file_tasks()
        root = tasks[0].cache_root if tasks else None
        # A copy's file is "cached" where it lies; any other file in the cache.
        where = {t.file_hash: url_path(t.url) if is_file_url(t.url) else None for t in tasks}
        paths = [path or Store(root).path(h) for h, path in where.items()] if root else []
        sizes = [path.stat().st_size for path in paths if path.is_file()]
        meta = self._meta()
        extra = dict(kind=self.kind, table=self.table, version=self.release_version,
                     index=meta.index.name, files=len(paths), cached=len(sizes),
                     cached_bytes=sum(sizes), cache=root)  # fmt: skip
        return Schema(
            dtype={name: str(dtype) for name, dtype in meta.dtypes.items()},
            shape=(None, len(meta.columns)),
            npartitions=len(tasks),
            extra_metadata=extra,
        )

    def discover(self) -> dict:
        """Columns, dtypes, how many files and how many are cached (bytes on disk).

        Opens no file: the meta is declared and the cache is looked at, not read.
        """
        self._schema = None  # "cached" changes under us
        return super().discover()

    def _get_partition(self, i: int):
        return read_task(self.file_tasks()[i])

    def read(self):
        """Every file's table, concatenated in pandas (for small selections)."""
        import pandas as pd

        tasks = self.file_tasks()  # each may download its file: one bar over them all
        frames = [read_task(t) for t in progress_iter(tasks, f"read {self.table}", "file")]
        return pd.concat(frames) if frames else self._meta()

    def to_dask(self):
        """A lazy dask DataFrame, one partition per file, its meta declared.

        Built with ``dataframe.convert-string`` off, so that array-per-row columns stay
        ``object`` holding numpy arrays whatever the dask configuration.
        """
        import dask
        import dask.dataframe as dd

        tasks = self.file_tasks()
        with dask.config.set({"dataframe.convert-string": False}):
            if not tasks:
                return dd.from_pandas(self._meta(), npartitions=1)
            return dd.from_map(
                read_task, tasks, meta=self._meta(), label=f"vbo-{self.table}",
                enforce_metadata=False,
            )  # fmt: skip

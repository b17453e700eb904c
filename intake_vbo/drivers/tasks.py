"""One task of a per-file table: get the file, read one attribute, close the file.

This is what a dask graph runs for each partition, on whichever thread, process or
``distributed`` worker the scheduler picks. A `FileTask` is plain data (a few strings and ints): it
pickles small and carries everything the task needs, so a worker needs neither the
catalog nor the client's environment, only the cache path and the bucket.

The task is idempotent: the file comes from the verified cache (or is downloaded into
it: one process downloads while the others wait on the cache's lock, the bytes are
verified and renamed into place, and a killed download resumes), is opened read-only,
read, and closed before the task returns. Running a task again, after its worker died,
say, gives the same frame and leaves the cache as a first run does. No HDF5 handle
outlives a task.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.release import kind_label
from ..transfer.opener import open_url
from .tablemeta import conform


@dataclass(frozen=True)
class FileTask:
    """What one partition reads: a table of one file.

    Attributes
    ----------
    kind : str
        ``ophys_experiment`` or ``behavior_session``.
    table : str
        A table of :data:`intake_vbo.catalog.schema.FILE_TABLES` for ``kind``.
    ident : int
        The ophys_experiment_id or behavior_session_id (the id column's value).
    url : str
        Where the file is fetched from, pinned to its version (``?versionId=``).
    file_hash : str
        The file's BLAKE2b: its name in the cache, and what the bytes must hash to.
    cache_root : str
        The cache directory (the same path on every worker).
    stream : bool
        Read by HTTP Range requests (blocks kept under the cache) instead of
        downloading whole; a file already cached is read from the cache either way.
    """

    kind: str
    table: str
    ident: int
    url: str
    file_hash: str
    cache_root: str
    stream: bool = False

    @property
    def label(self) -> str:
        """How messages name the file: ``ophys experiment 951980471``."""
        return f"{kind_label(self.kind)} {self.ident}"


def read_task(task: FileTask):
    """The table of one file, in the declared shape, with the file's id column.

    Parameters
    ----------
    task : FileTask
        What to read.

    Returns
    -------
    pandas.DataFrame
        ``tablemeta.conform`` of the object's attribute.

    Raises
    ------
    VboError
        The file cannot be fetched or read, or a column does not fit its declared dtype.
    """
    from ..nwb import open_experiment, open_session

    opener = open_experiment if task.kind == "ophys_experiment" else open_session
    source = open_url(task.url, task.file_hash, task.cache_root, stream=task.stream)
    with opener(source, close_source=True) as view:
        frame = _attribute(view, task.table)
    return conform(frame, task.table, task.kind, task.ident, task.label)


def _attribute(view, table: str):
    """The object's table; the cell table without its masks (``roi_masks`` has them)."""
    if table == "cell_specimen_table":
        return view.cell_specimen_table_without_masks()
    return getattr(view, table)

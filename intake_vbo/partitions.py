"""One partition of a per-file table: get the file, read one attribute, close the file.

This is the task a dask graph runs, on whichever thread, process or ``distributed``
worker the scheduler picks. A `FilePart` is plain data (a few strings and ints): it
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

from .tablemeta import conform


@dataclass(frozen=True)
class FilePart:
    """What one partition reads: a table of one file.

    Attributes
    ----------
    kind : str
        ``ophys_experiment`` or ``behavior_session``.
    table : str
        A table of :data:`intake_vbo.tablemeta.TABLES`.
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
        return f"{self.kind.replace('_', ' ')} {self.ident}"


def read_partition(part: FilePart):
    """The table of one file, in the declared shape, with the file's id column.

    Parameters
    ----------
    part : FilePart
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
    from .cache import Cache
    from .nwb import open_experiment, open_session

    cache = Cache(part.cache_root)
    stream = None
    if cache.has(part.file_hash) or not part.stream:
        source = cache.fetch(part.url, part.file_hash)
    else:
        from .ranges import open_url

        source = stream = open_url(part.url, part.file_hash, cache.root)
    opener = open_experiment if part.kind == "ophys_experiment" else open_session
    try:
        with opener(source) as view:
            frame = _attribute(view, part.table)
    finally:
        if stream is not None:
            stream.close()
    return conform(frame, part.table, part.kind, part.ident, part.label)


def _attribute(view, table: str):
    """The object's table; the cell table without its masks (``roi_masks`` has them)."""
    if table == "cell_specimen_table":
        return view._cell_specimen_table_without_masks()
    return getattr(view, table)

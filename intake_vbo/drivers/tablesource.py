"""The ``vbo_table`` driver: one metadata table of one release version, from Parquet.

It reads the Parquet partition its catalog names, never the DuckDB file, so readers
take no lock and a build in progress never blocks them.
"""

from __future__ import annotations

from intake.source.base import DataSource, Schema

from ..base import __version__
from ..base.errors import VboError
from ..catalog.index import read_part
from . import params  # noqa: F401  (intake's spurious warning filtered before any source)
from .frames import FRAME_INDEX, to_pandas


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
            extra_metadata={"index": FRAME_INDEX[self.table]},
        )

    def _get_partition(self, i: int):
        return self.read()

    def read(self):
        """The table as a DataFrame indexed as AllenSDK indexes it."""
        return to_pandas(self.table, read_part(self.path))

    def to_dask(self):
        """The table as a one-partition dask DataFrame."""
        import dask.dataframe as dd

        return dd.from_pandas(self.read(), npartitions=1)

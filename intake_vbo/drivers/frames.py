"""Arrow tables -> the pandas DataFrames users get, shaped as AllenSDK shapes them.

Kept apart from :mod:`intake_vbo.catalog.tables` (CSV parsing) so that reading a catalog table
imports pandas and pyarrow only, not the CSV and compute kernels a build needs.
"""

from __future__ import annotations

import pyarrow as pa

from ..catalog.schema import ALLENSDK_ORDER, INDEX

# The index of every table a catalog serves as a DataFrame.
FRAME_INDEX = INDEX | {"files": "file_id"}


def to_pandas(table: str, arrow: pa.Table):
    """The DataFrame a user gets: AllenSDK 2.16's ``get_*_table()`` values, indexed alike.

    Parameters
    ----------
    table : str
        Our table name, a key of `FRAME_INDEX`.
    arrow : pyarrow.Table
        The table as `read_table` made it (or as read back from Parquet).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``FRAME_INDEX[table]``; integers as ``Int64``, lists as Python lists (NaN
        where null, as AllenSDK has it), dates as ``datetime64[us, UTC]``, booleans as
        ``bool`` (``boolean`` with nulls), text as ``str``. Columns AllenSDK orders
        come in its order, the others after them in the table's order.
    """
    import numpy as np
    import pandas as pd

    frame = arrow.to_pandas(
        types_mapper=lambda t: pd.Int64Dtype() if pa.types.is_integer(t) else None
    )
    for name, column in zip(arrow.column_names, arrow.columns, strict=True):
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            values = [np.nan if v is None else v for v in column.to_pylist()]
            frame[name] = pd.Series(values, index=frame.index, dtype=object)
        elif pa.types.is_boolean(column.type):
            frame[name] = frame[name].astype("boolean" if column.null_count else bool)
    if table != "ophys_cells":
        known = [c for c in ALLENSDK_ORDER if c in frame.columns]
        frame = frame[known + [c for c in frame.columns if c not in known]]
    index = FRAME_INDEX[table]
    return frame.set_index(index) if index in frame.columns else frame

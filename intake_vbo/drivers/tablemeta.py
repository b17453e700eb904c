"""The declared shape of every per-file table: the meta of a dask partition, known unopened.

A dask DataFrame over many NWB files needs its columns and dtypes before any file is
read, and every partition must then have exactly them. This module is the one home of
those facts: per table, its index and its columns with their dtypes, as the analysis
objects (:mod:`intake_vbo.nwb`) give them for released files (which kind of file has
which tables: :data:`intake_vbo.catalog.schema.FILE_TABLES`).
:func:`conform` brings one file's table to that shape and adds the file's id column.

Rules
-----
- Columns are those the objects give, in their order, then the file's id
  (``ophys_experiment_id`` or ``behavior_session_id``, int64). ``cell_specimen_table``
  comes without ``roi_mask`` (``roi_masks`` has the masks).
- Array-per-row columns (traces, events, masks, ``lick_times``) are ``object`` and keep
  one numpy array a row; text is ``str`` (``object`` under pandas 2).
- ``stimulus_presentations`` has the union of the known columns (the released ones, then
  the gratings' parameters); a column a file lacks is null, a column not declared here
  is dropped with a warning.
- The ``cell_specimen_id`` index is ``Int64``: the objects give int64, float64 (NaN where
  unassigned) or object (every id unassigned) depending on the file; one dtype is needed
  across files, and ``Int64`` keeps the ids exact and joins with the ``ophys_cells`` table.
- A missing value is NaN (float, str), ``pd.NA`` (``boolean``, ``Int64``), None (object),
  -99 (int64: AllenSDK's integer null) or False (bool). A file whose column does not fit
  the declared dtype without changing a value is a one-line `VboError` naming file and column.
- A file without the attribute (no demixed traces, no event detection, no templates)
  gives an empty partition.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..base.errors import VboError
from ..catalog.release import KINDS, id_column, kind_label
from ..catalog.schema import FILE_TABLES
from ..nwb.conventions import INT_NULL, LEADING_COLUMNS

_F, _I, _B, _O, _S = "float64", "int64", "bool", "object", "str"
_ROI_ID = {"cell_roi_id": _I}
_EYE = {"timestamps": _F, "cr_area": _F, "eye_area": _F, "pupil_area": _F, "likely_blink": _B}
_EYE |= dict.fromkeys(["pupil_area_raw", "cr_area_raw", "eye_area_raw"], _F)
_EYE |= {f"{part}_{what}": _F for part in ("cr", "eye", "pupil")
         for what in ("center_x", "center_y", "width", "height", "phi")}  # fmt: skip


@dataclass(frozen=True)
class TableMeta:
    """One per-file table: where it is, its index and its columns.

    Attributes
    ----------
    index : tuple of (str or None, str)
        The index name (None: unnamed) and dtype.
    columns : dict
        Column name -> dtype name, in the objects' order.
    """

    index: tuple[str | None, str]
    columns: dict[str, str]


def _ophys(columns) -> TableMeta:
    return TableMeta(("cell_specimen_id", "Int64"), _ROI_ID | columns)


_PRESENTATION_TYPES = {
    # the released columns (AllenSDK's leading ones, then the rest)
    "stimulus_block": _I, "stimulus_block_name": _S, "image_index": _I, "image_name": _S,
    "movie_frame_index": _I, "duration": _F, "start_time": _F, "end_time": _F,
    "start_frame": _I, "end_frame": _I, "is_change": _B, "is_image_novel": "boolean",
    "omitted": "boolean", "movie_repeat": _I, "flashes_since_change": _I, "trials_id": _I,
    "active": _B, "is_sham_change": _B, "stimulus_name": _S,
    # the gratings' parameters of the training sessions
    "color": _O, "contrast": _F, "orientation": _F, "phase": _F, "position_x": _F,
    "position_y": _F, "repeat": _I, "rewarded": "boolean", "size": _O,
    "spatial_frequency": _F, "stimulus_index": _I, "temporal_frequency": _F,
}  # fmt: skip
# In the objects' order: the leading columns, then the rest by name.
_PRESENTATIONS = {
    name: _PRESENTATION_TYPES[name]
    for name in (*LEADING_COLUMNS, *sorted(set(_PRESENTATION_TYPES) - set(LEADING_COLUMNS)))
}
_TRIALS = {
    "start_time": _F, "stop_time": _F, "initial_image_name": _S, "change_image_name": _S,
    "is_change": _B, "change_time": _F, "go": _B, "catch": _B, "lick_times": _O,
    "response_time": _F, "response_latency": _F, "reward_time": _F, "reward_volume": _F,
    "hit": _B, "false_alarm": _B, "miss": _B, "correct_reject": _B, "aborted": _B,
    "auto_rewarded": _B, "change_frame": _I, "trial_length": _F,
}  # fmt: skip
_CELLS = {
    "height": _I, "mask_image_plane": _I, "max_correction_down": _F, "max_correction_left": _F,
    "max_correction_right": _F, "max_correction_up": _F, "valid_roi": _B, "width": _I,
    "x": _I, "y": _I,
}  # fmt: skip

TABLES: dict[str, TableMeta] = {
    # the experiment's per-ROI tables, indexed by cell_specimen_id
    "dff_traces": _ophys({"dff": _O}),
    "events": _ophys({"events": _O, "filtered_events": _O, "lambda": _F, "noise_std": _F}),
    "cell_specimen_table": _ophys(_CELLS),
    "corrected_fluorescence_traces": _ophys({"corrected_fluorescence": _O, "r": _F, "RMSE": _F}),
    "demixed_traces": _ophys({"demixed_trace": _O}),
    "neuropil_traces": _ophys({"neuropil_trace": _O}),
    "roi_masks": _ophys({"roi_mask": _O}),
    "motion_correction": TableMeta((None, _I), {"x": _I, "y": _I}),
    # the session's, in experiment files too
    "trials": TableMeta(("trials_id", _I), _TRIALS),
    "stimulus_presentations": TableMeta(("stimulus_presentations_id", _I), _PRESENTATIONS),
    "running_speed": TableMeta((None, _I), {"timestamps": _F, "speed": _F}),
    "raw_running_speed": TableMeta((None, _I), {"timestamps": _F, "speed": _F}),
    "licks": TableMeta((None, _I), {"timestamps": _F, "frame": _I}),
    "rewards": TableMeta((None, _I), {"volume": _F, "timestamps": _F, "auto_rewarded": _B}),
    "eye_tracking": TableMeta(("frame", _I), _EYE),
    "stimulus_templates": TableMeta(("image_name", _S), {"unwarped": _O, "warped": _O}),
}


def check_table(table: str, kind: str) -> TableMeta:
    """The declared table, or a one-line `VboError` listing the ones ``kind`` has."""
    if kind not in KINDS or table not in FILE_TABLES[kind]:
        choices = ", ".join(FILE_TABLES.get(kind, ()))
        raise VboError(
            f"{kind_label(kind)} tables: unknown table {table!r}; choose one of {choices}"
        )
    return TABLES[table]


def empty(table: str, kind: str):
    """The partition meta: an empty DataFrame with the declared index, columns and dtypes."""
    import pandas as pd

    meta = check_table(table, kind)
    name, dtype = meta.index
    columns = {c: pd.Series([], dtype=_pandas_dtype(d)) for c, d in meta.columns.items()}
    columns[id_column(kind)] = pd.Series([], dtype="int64")
    return pd.DataFrame(columns, index=pd.Index([], dtype=_pandas_dtype(dtype), name=name))


def conform(frame, table: str, kind: str, ident: int, name: str):
    """One file's table in the declared shape, with its id column added.

    Parameters
    ----------
    frame : pandas.DataFrame or None
        The attribute as the object gave it (None: the file lacks it).
    table, kind : str
        The table and the kind of file.
    ident : int
        The behavior_session_id or ophys_experiment_id of the file.
    name : str
        How errors name the file.

    Raises
    ------
    VboError
        A column whose values the declared dtype cannot hold unchanged.
    """
    import pandas as pd

    meta = check_table(table, kind)
    if frame is None:
        frame = empty(table, kind).drop(columns=id_column(kind))
    extra = [c for c in frame.columns if c not in meta.columns]
    if extra:
        warnings.warn(f"{name}: {table} columns {extra} are not declared; left out", stacklevel=2)
    columns = {}
    for column, dtype in meta.columns.items():
        if column in frame.columns:
            columns[column] = _cast(frame[column], dtype, f"{name}: {table} column {column!r}")
        else:
            columns[column] = _nulls(dtype, frame.index)
    out = pd.DataFrame(columns, index=frame.index)
    index_name, index_dtype = meta.index
    out.index = _cast_index(out.index, index_dtype, f"{name}: {table} index").rename(index_name)
    out[id_column(kind)] = pd.Series(ident, index=out.index, dtype="int64")
    return out


def _pandas_dtype(name: str):
    """The dtype pandas gives ``name`` (``str``: the text dtype of this pandas version)."""
    import pandas as pd

    return pd.Series([], dtype=name).dtype


def _nulls(dtype: str, index):
    import numpy as np
    import pandas as pd

    fill = {_I: INT_NULL, _B: False, _O: None, _F: np.nan, _S: np.nan}.get(dtype, pd.NA)
    if dtype == _O:
        return pd.Series([None] * len(index), index=index, dtype=object)
    return pd.Series(fill, index=index, dtype=_pandas_dtype(dtype))


def _cast(series, dtype: str, what: str):
    """``series`` as ``dtype`` when no value changes; else a one-line `VboError`."""
    target = _pandas_dtype(dtype)
    if series.dtype == target:
        return series
    if dtype == _O:
        return series.astype(object)
    try:
        cast = series.astype(target)
    except (TypeError, ValueError) as exc:
        raise VboError(f"{what} ({series.dtype}) does not fit {dtype}: {exc}") from None
    if series.dtype.kind == "f" and dtype in (_I, _B) and not _same(series, cast):
        raise VboError(f"{what} ({series.dtype}) has values that are not {dtype}")
    return cast


def _same(before, after) -> bool:
    import numpy as np

    a, b = (s.to_numpy(float, na_value=np.nan) for s in (before, after))
    return bool(np.array_equal(a, b, equal_nan=True))


def _cast_index(index, dtype: str, what: str):
    import pandas as pd

    target = _pandas_dtype(dtype)
    if index.dtype == target:
        return index
    if dtype == "Int64" and index.dtype == object:  # every id unassigned: None
        return pd.Index(pd.array(list(index), dtype="Int64"), name=index.name)
    try:
        cast = index.astype(target)
    except (TypeError, ValueError) as exc:
        raise VboError(f"{what} ({index.dtype}) does not fit {dtype}: {exc}") from None
    if index.dtype.kind == "f" and not _same(pd.Series(index), pd.Series(cast)):
        raise VboError(f"{what} ({index.dtype}) has values that are not {dtype}")
    return cast

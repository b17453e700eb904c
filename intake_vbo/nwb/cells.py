"""The ROI half of an experiment: cell table, masks, trace families and events.

Pure functions over an open `NWBReader`, giving what AllenSDK 2.16.2's ``CellSpecimens``
gives from ``processing/ophys``, read with h5py one dataset at a time:

- `read_rois` reads the three small columns every per-ROI frame needs (ids, specimen ids,
  validity); the masks are read only by `read_masks`, the traces only by their readers.
- Trace arrays are the stored (frames x ROIs) array seen transposed: no copy when every
  ROI is served in file order, one copy of the served columns otherwise. Values keep the
  stored dtype (float32 traces stay float32, as AllenSDK keeps them).
- Trace ROI ids are the ids of the whole table the series' ``rois`` region points into
  (AllenSDK reads ``rois.table.id``, not the region), reordered to the served table rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..base.errors import VboError
from .conventions import EVENTS_FILTER_N_TIME_STEPS, EVENTS_FILTER_SCALE_SECONDS
from .ophys import CELL_TABLE, OPHYS, Image

if TYPE_CHECKING:
    from .file import NWBReader

EVENTS = f"{OPHYS}/event_detection"
# attribute -> (RoiResponseSeries group, the frame's column name)
TRACES = {
    "dff_traces": (f"{OPHYS}/dff/traces", "dff"),
    "demixed_traces": (f"{OPHYS}/demixed_trace/traces", "demixed_trace"),
    "neuropil_traces": (f"{OPHYS}/neuropil_trace/traces", "neuropil_trace"),
    "corrected_fluorescence_traces": (
        f"{OPHYS}/corrected_fluorescence/traces",
        "corrected_fluorescence",
    ),
}
_FILTER_BLOCK = 1 << 15  # elements per block of the events filter: fits a CPU cache


@dataclass(frozen=True)
class Rois:
    """The served rows of the cell table and the ids that label them.

    Attributes
    ----------
    ids : numpy.ndarray
        ``cell_roi_id`` of every row of the table, file order.
    specimen_ids : numpy.ndarray
        ``cell_specimen_id`` of every row (-1 where none), file order.
    rows : numpy.ndarray
        Positions of the served rows: the valid ones (or all), file order.
    """

    ids: np.ndarray
    specimen_ids: np.ndarray
    rows: np.ndarray

    @property
    def roi_ids(self) -> np.ndarray:
        """``cell_roi_id`` of the served rows."""
        return self.ids[self.rows]


def read_rois(reader: NWBReader, exclude_invalid_rois: bool = True) -> Rois:
    """Read ``id``, ``cell_specimen_id`` and ``valid_roi`` of the cell table (no masks)."""
    reader.require(CELL_TABLE, "an ophys experiment NWB file")
    ids = reader.read(f"{CELL_TABLE}/id").astype(np.int64, copy=False)
    specimen_ids = reader.read(f"{CELL_TABLE}/cell_specimen_id")
    if exclude_invalid_rois and reader.has(f"{CELL_TABLE}/valid_roi"):
        rows = np.flatnonzero(reader.read(f"{CELL_TABLE}/valid_roi"))
    else:
        rows = np.arange(len(ids))
    return Rois(ids, specimen_ids, rows)


def specimen_index(rois: Rois, keep: np.ndarray | None = None):
    """The ``cell_specimen_id`` index of the served rows (or of ``rows[keep]``).

    As AllenSDK builds it: -1 becomes None over the *whole* table, and pandas infers the
    dtype from that list (int64 without -1, float64 with NaN when mixed, object when every
    id is -1); then the served rows are taken.
    """
    import pandas as pd

    values = [None if value == -1 else value for value in rois.specimen_ids]
    rows = rois.rows if keep is None else rois.rows[keep]
    return pd.Index(values, name="cell_specimen_id").take(rows)


def read_masks(reader: NWBReader, rois: Rois) -> np.ndarray:
    """The served rows' full-field ``image_mask`` as one (ROIs, height, width) bool array."""
    path = f"{CELL_TABLE}/image_mask"
    if not reader.has(path):
        raise VboError(f"{reader.name}: the cell table has no image_mask")
    masks = reader.read(path)
    return masks if _is_identity(rois.rows, len(masks)) else masks[rois.rows]


def segmentation_mask_image(masks: np.ndarray, spacing: tuple | None) -> Image:
    """AllenSDK's segmentation mask: 1 where any served ROI is, else 0 (int64).

    AllenSDK computes ``np.sum(roi_masks["roi_mask"]).astype(int)``; summing bool arrays
    with ``+`` is a logical or, so overlapping ROIs give 1, not an overlap count. With no
    ROI at all the image is zeros (AllenSDK gives a scalar 0 there).
    """
    return Image(np.any(masks, axis=0).astype(np.int64), spacing, "mm")


def cell_specimen_table(reader: NWBReader, rois: Rois, masks: np.ndarray | None):
    """The served rows of the cell table, indexed by ``cell_specimen_id``.

    Columns: ``cell_roi_id``, then the table's columns in the file's order (int32 widened
    to int64) with ``image_mask`` renamed ``roi_mask`` (one full-field bool array a row);
    with ``masks=None`` the masks are neither read nor served.
    """
    import pandas as pd

    columns = {"cell_roi_id": rois.roi_ids}
    for name in reader.attrs(CELL_TABLE).get("colnames", ()):
        if name == "cell_specimen_id":
            continue
        if name == "image_mask":
            if masks is not None:
                columns["roi_mask"] = object_column(masks)
            continue
        values = reader.read_text(f"{CELL_TABLE}/{name}")[rois.rows]
        columns[name] = values.astype(np.int64) if values.dtype == np.int32 else values
    return pd.DataFrame(columns, index=specimen_index(rois))


def read_traces(reader: NWBReader, rois: Rois, attribute: str):
    """``dff_traces``, ``demixed_traces``, ``neuropil_traces`` or the corrected ones.

    A frame indexed by ``cell_specimen_id``: ``cell_roi_id`` and one array a row (frames,
    stored dtype); ``corrected_fluorescence_traces`` adds ``r`` and ``RMSE`` when the file
    has both. None when the file lacks the series.
    """
    series, column = TRACES[attribute]
    if reader.kind(f"{series}/data") != "dataset":
        return None
    rows, positions = _series_rows(reader, rois, series)
    columns = {"cell_roi_id": rois.roi_ids, column: object_column(rows, positions)}
    if attribute == "corrected_fluorescence_traces":
        columns.update(_fit_columns(reader, series.rsplit("/", 1)[0], positions))
    import pandas as pd

    return pd.DataFrame(columns, index=specimen_index(rois))


def _fit_columns(reader: NWBReader, group: str, positions: np.ndarray) -> dict:
    """``r`` and ``RMSE`` of the neuropil fit, in served order; {} unless both are stored."""
    paths = {name: f"{group}/{name}/data" for name in ("r", "RMSE")}
    if not all(reader.kind(path) == "dataset" for path in paths.values()):
        return {}
    return {name: reader.read(path)[positions] for name, path in paths.items()}


def read_events(
    reader: NWBReader,
    rois: Rois,
    frame_rate: float,
    filter_scale_seconds: float = EVENTS_FILTER_SCALE_SECONDS,
    filter_n_time_steps: int = EVENTS_FILTER_N_TIME_STEPS,
):
    """Detected events of the served ROIs, with AllenSDK's smoothed copy; None without any.

    Columns ``cell_roi_id``, ``events`` (stored dtype), ``filtered_events`` (float64: the
    events convolved with a causal half-normal filter, `halfnorm_weights`), ``lambda``,
    ``noise_std``; indexed by ``cell_specimen_id``. A served ROI without events is dropped
    with a warning, as AllenSDK drops it. The ROI ids come from the ``rois`` region and the
    table's ids alone: the masks are not read.
    """
    if reader.kind(f"{EVENTS}/data") != "dataset":
        return None
    weights = halfnorm_weights(filter_scale_seconds * frame_rate, filter_n_time_steps)
    data = reader.read(f"{EVENTS}/data")
    region = reader.read(f"{EVENTS}/rois")
    event_ids = _table_ids(reader, rois, f"{EVENTS}/rois")[region]
    _check_columns(reader, EVENTS, data, event_ids)
    positions, found = _positions(rois.roi_ids, event_ids)
    if not found.all():
        warnings.warn("Input contains roi ids not in Events.", stacklevel=2)
    positions = positions[found]
    import pandas as pd

    # Every column is filtered and each row served as a view: no copy of the selection.
    columns = {
        "cell_roi_id": rois.roi_ids[found],
        "events": object_column(data.T, positions),
        "filtered_events": object_column(causal_filter(data, weights).T, positions),
        "lambda": reader.read(f"{EVENTS}/lambdas")[positions],
        "noise_std": reader.read(f"{EVENTS}/noise_stds")[positions],
    }
    return pd.DataFrame(columns, index=specimen_index(rois, found))


def halfnorm_weights(scale: float, n_time_steps: int) -> np.ndarray:
    """``scipy.stats.halfnorm(scale=scale).pdf(arange(n))`` normalised to sum to 1.

    The pdf's constant factor cancels in the normalisation, so only the Gaussian shape is
    computed (equal to scipy's to a few ulp).
    """
    if n_time_steps < 1:
        raise VboError(f"events_filter_n_time_steps must be at least 1, not {n_time_steps}")
    if not scale > 0:
        raise VboError(f"the events filter scale must be positive, not {scale}")
    weights = np.exp(-0.5 * (np.arange(n_time_steps) / scale) ** 2)
    return weights / weights.sum()


def causal_filter(signal: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Filter every column of a (frames, ROIs) array causally along the frames, as float64.

    Equals ``np.convolve(signal[:, i], weights)[:frames]`` for every column ``i``, the
    terms added lag by lag as the dense form adds them. Detected events are sparse (a
    fraction of a percent of frames), so only the nonzero samples are spread; a dense
    signal takes the blocked form.
    """
    frames = signal.shape[0]
    out = np.zeros(signal.shape, dtype=np.float64)
    rows, cols = np.nonzero(signal)
    if rows.size > signal.size // 8:
        return _dense_filter(signal, weights, out)
    values = signal[rows, cols].astype(np.float64)
    for lag, weight in enumerate(weights):
        keep = rows < frames - lag
        # (row + lag, col) are distinct for one lag, so the fancy += adds each term once
        out[rows[keep] + lag, cols[keep]] += values[keep] * weight
    return out


def _dense_filter(signal: np.ndarray, weights: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`causal_filter` for all columns at once, block by block of frames (small temporaries)."""
    frames, width = signal.shape
    if out.size == 0:
        return out
    step = max(1, _FILTER_BLOCK // width)
    scratch = np.empty((min(step, frames), width), dtype=np.float64)
    for start in range(0, frames, step):
        stop = min(start + step, frames)
        for lag, weight in enumerate(weights):
            first = max(start, lag)  # rows before `lag` see only the zero padding
            if first >= stop:
                break
            part = scratch[: stop - first]
            np.multiply(signal[first - lag : stop - lag], weight, out=part)
            out[first:stop] += part
    return out


def _series_rows(reader: NWBReader, rois: Rois, series: str) -> tuple[np.ndarray, np.ndarray]:
    """A (frames, ROIs) series as (ROIs, frames), and the served ROIs' rows in it."""
    data = reader.read(f"{series}/data")
    ids = _table_ids(reader, rois, f"{series}/rois")
    _check_columns(reader, series, data, ids)
    positions, found = _positions(rois.roi_ids, ids)
    if not found.all():
        missing = rois.roi_ids[~found][:3].tolist()
        raise VboError(f"{reader.name}: {series} has no trace for ROIs {missing}")
    return data.T, positions


def _check_columns(reader: NWBReader, series: str, data: np.ndarray, ids: np.ndarray) -> None:
    if data.ndim != 2 or data.shape[1] != len(ids):
        raise VboError(f"{reader.name}: {series}/data has shape {data.shape} for {len(ids)} ROIs")


def _table_ids(reader: NWBReader, rois: Rois, region: str) -> np.ndarray:
    """The ids of the whole table a DynamicTableRegion points into (the cell table's: kept)."""
    reference = reader.attrs(region).get("table")
    if reference is None:
        return rois.ids
    table = reader.h5[reference].name.strip("/")
    if table == CELL_TABLE:
        return rois.ids
    return reader.read(f"{table}/id")


def _positions(wanted: np.ndarray, have: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``wanted`` is in ``have``, and whether it is there at all."""
    if len(have) == 0:
        return np.zeros(len(wanted), dtype=np.intp), np.zeros(len(wanted), dtype=bool)
    order = np.argsort(have, kind="stable")
    at = np.minimum(np.searchsorted(have, wanted, sorter=order), len(have) - 1)
    positions = order[at]
    return positions, have[positions] == wanted


def _is_identity(positions: np.ndarray, size: int) -> bool:
    return len(positions) == size and bool(np.all(positions == np.arange(size)))


def object_column(rows: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
    """One object cell per first-axis entry (those at ``positions``), each a view of ``rows``.

    No copy: a cell is ``rows[i]``, which keeps the stored layout (a trace of a (frames,
    ROIs) dataset is a strided view).
    """
    chosen = range(len(rows)) if positions is None else positions
    return np.fromiter((rows[i] for i in chosen), dtype=object, count=len(chosen))

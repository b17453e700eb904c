"""BehaviorOphysExperiment: AllenSDK 2.16.2's experiment view of a VBO NWB file, read lazily.

The session's 16 names plus the 18 ophys ones (AllenSDK's 35 less the LIMS-only
``update_targeted_imaging_depth``). Each attribute reads only its own datasets with h5py
on first access and is kept (see `session.lazy`); the per-ROI frames share one read of the
table's ids and validity, and the masks are read only for the table, ``roi_masks`` and the
segmentation mask. This module imports h5py and numpy only: ``open_experiment(p).max_projection``
loads neither pandas nor pynwb.

Public interface
----------------
open_experiment(source, **kwargs) -> BehaviorOphysExperiment
BehaviorOphysExperiment(reader, *, events_filter_scale_seconds=2/31, events_filter_n_time_steps=20,
                        exclude_invalid_rois=True, **session_options)
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

try:  # numpy >= 1.25
    from numpy.exceptions import VisibleDeprecationWarning
except ImportError:  # numpy 1.24
    from numpy import VisibleDeprecationWarning

from ..base.errors import VboError
from . import cells, ophys
from .conventions import EVENTS_FILTER_N_TIME_STEPS, EVENTS_FILTER_SCALE_SECONDS
from .session import BehaviorSession, lazy

if TYPE_CHECKING:
    from .file import NWBReader


def _legacy(message: str = ""):
    """Warn as AllenSDK's ``@legacy`` does (numpy's VisibleDeprecationWarning), then call."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            warnings.warn(
                f"Function {method.__name__} is provided for backward-compatibilty with a "
                f"legacy API, and may be removed in the future. {message}",
                category=VisibleDeprecationWarning,
                stacklevel=2,
            )
            return method(*args, **kwargs)

        return wrapper

    return decorate


class BehaviorOphysExperiment(BehaviorSession):
    """An ophys experiment NWB file as AllenSDK 2.16.2's ``BehaviorOphysExperiment`` gives it.

    Parameters
    ----------
    reader : NWBReader
        The open file; the experiment owns it from now on.
    events_filter_scale_seconds : float
        Scale (s) of the half-normal filter that smooths ``events`` (AllenSDK: 2/31).
    events_filter_n_time_steps : int
        Length (frames) of that filter (AllenSDK: 20).
    exclude_invalid_rois : bool
        Serve only ROIs with ``valid_roi`` (AllenSDK: True).
    **session_options
        `BehaviorSession`'s keyword arguments (eye-tracking blink detection).

    Raises
    ------
    VboError
        One line naming the file when it has no ``processing/ophys`` (a behavior-only file).
    """

    _REQUIRES = (
        *BehaviorSession._REQUIRES,
        ("processing/ophys", "a Visual Behavior ophys experiment NWB file"),
    )

    def __init__(
        self,
        reader: NWBReader,
        *,
        events_filter_scale_seconds: float = EVENTS_FILTER_SCALE_SECONDS,
        events_filter_n_time_steps: int = EVENTS_FILTER_N_TIME_STEPS,
        exclude_invalid_rois: bool = True,
        **session_options: Any,
    ):
        super().__init__(reader, **session_options)
        self._events_filter = (float(events_filter_scale_seconds), int(events_filter_n_time_steps))
        self._exclude_invalid_rois = bool(exclude_invalid_rois)

    # -- shared, private reads ---------------------------------------------------------

    @lazy
    def _rois(self) -> cells.Rois:
        """The cell table's ids, specimen ids and served rows (no masks)."""
        return cells.read_rois(self._reader, self._exclude_invalid_rois)

    @lazy
    def _masks(self) -> np.ndarray:
        """The served ROIs' full-field masks, (ROIs, height, width) bool."""
        return cells.read_masks(self._reader, self._rois)

    @lazy
    def _multiplane(self) -> bool:
        return ophys.is_multiplane(self._reader)

    # -- ids, frame times, metadata ----------------------------------------------------

    @lazy
    def ophys_experiment_id(self) -> int:
        """``int(identifier)`` (AllenSDK reads it there, not from ``/general/metadata``)."""
        return ophys.ophys_experiment_id(self._reader)

    @lazy
    def ophys_session_id(self) -> int:
        """``/general/metadata`` attribute ``ophys_session_id``."""
        return ophys.ophys_session_id(self._reader)

    @lazy
    def ophys_timestamps(self) -> np.ndarray:
        """Frame times (s) of the traces; a single plane's extra sync frames dropped."""
        return ophys.ophys_timestamps(self._reader, self._multiplane)

    @lazy
    def metadata(self) -> dict:
        """The 28-key experiment metadata dict, in AllenSDK's key order.

        The session's 14 keys (``project_code`` replaced by the ophys value in place), then
        indicator (parsed from the reporter line), emission / excitation lambda, container,
        field of view, depths, plane group (None / 0 unless multiplane), experiment id,
        frame rate, session id and targeted structure.
        """
        from .behavior import read_behavior_metadata

        behavior = read_behavior_metadata(self._reader)
        return ophys.ophys_metadata(self._reader, behavior, self._multiplane)

    # -- images ------------------------------------------------------------------------

    @lazy
    def max_projection(self) -> ophys.Image:
        """The max-intensity projection: ``Image(data, spacing (mm), 'mm')``; None without."""
        return ophys.read_image(self._reader, "max_projection")

    @lazy
    def average_projection(self) -> ophys.Image:
        """The average image of the movie, as ``max_projection``; None without."""
        return ophys.read_image(self._reader, "average_image")

    @lazy
    def segmentation_mask_image(self) -> ophys.Image:
        """1 where any served ROI's mask is, else 0 (int64), with ``max_projection``'s spacing.

        Recomputed from the masks as AllenSDK does (the stored image is not read); AllenSDK's
        sum of bool arrays is a logical or, so overlaps count once.
        """
        spacing = ophys.image_spacing(self._reader, "max_projection")
        return cells.segmentation_mask_image(self._masks, spacing)

    def get_segmentation_mask_image(self) -> ophys.Image:
        """``segmentation_mask_image``."""
        return self.segmentation_mask_image

    # -- the cell table and the per-ROI frames -----------------------------------------

    @lazy
    def cell_specimen_table(self):
        """The valid ROIs, indexed by ``cell_specimen_id`` (see `cells.specimen_index`).

        Columns cell_roi_id, height, mask_image_plane, max_correction_down / left / right /
        up, valid_roi, width, x, y, roi_mask (a full-field bool array per row).
        """
        return cells.cell_specimen_table(self._reader, self._rois, self._masks)

    def cell_specimen_table_without_masks(self):
        """``cell_specimen_table`` less ``roi_mask``, the masks unread (not AllenSDK's).

        What the per-file tables serve: the masks are most of the table's bytes, and
        ``roi_masks`` has them.
        """
        if "cell_specimen_table" in self._cache:
            return self.cell_specimen_table.drop(columns="roi_mask")
        return cells.cell_specimen_table(self._reader, self._rois, None)

    @lazy
    def roi_masks(self):
        """``cell_specimen_table[["cell_roi_id", "roi_mask"]]`` (the other columns unread)."""
        import pandas as pd

        rois = self._rois
        columns = {"cell_roi_id": rois.roi_ids, "roi_mask": cells.object_column(self._masks)}
        return pd.DataFrame(columns, index=cells.specimen_index(rois))

    @lazy
    def dff_traces(self):
        """dF/F per ROI: ``cell_roi_id``, ``dff`` (float32 array per row, stored dtype)."""
        return cells.read_traces(self._reader, self._rois, "dff_traces")

    @lazy
    def corrected_fluorescence_traces(self):
        """``cell_roi_id``, ``corrected_fluorescence``, and ``r``, ``RMSE`` when stored."""
        return cells.read_traces(self._reader, self._rois, "corrected_fluorescence_traces")

    @lazy
    def demixed_traces(self):
        """``cell_roi_id``, ``demixed_trace``; None when the file has none."""
        return cells.read_traces(self._reader, self._rois, "demixed_traces")

    @lazy
    def neuropil_traces(self):
        """``cell_roi_id``, ``neuropil_trace`` from ``neuropil_trace/traces``; None without.

        Fixes a bug of AllenSDK 2.16.2, whose ``neuropil_traces`` returns the demixed
        traces (column ``demixed_trace``).
        """
        return cells.read_traces(self._reader, self._rois, "neuropil_traces")

    @lazy
    def events(self):
        """``cell_roi_id``, ``events``, ``filtered_events``, ``lambda``, ``noise_std``.

        ``filtered_events`` is AllenSDK's causal half-normal smoothing (float64). None when
        the file has no event detection.
        """
        scale, steps = self._events_filter
        rate = ophys.frame_rate(self._reader)
        return cells.read_events(self._reader, self._rois, rate, scale, steps)

    @lazy
    def motion_correction(self):
        """DataFrame ``x``, ``y``: the per-frame shifts (pixels); None when not stored."""
        return ophys.motion_correction(self._reader)

    # -- AllenSDK's legacy methods -----------------------------------------------------

    @_legacy("Consider using cell_specimen_table['cell_specimen_id'] instead.")
    def get_cell_specimen_ids(self) -> np.ndarray:
        """The ``cell_specimen_id`` of every served ROI (table order)."""
        return self._specimen_ids()

    @_legacy()
    def get_cell_specimen_indices(self, cell_specimen_ids) -> list[int]:
        """The table positions of ``cell_specimen_ids``."""
        index = cells.specimen_index(self._rois)
        try:
            return [index.get_loc(csid) for csid in cell_specimen_ids]
        except KeyError as exc:
            raise VboError(f"{self._reader.name}: no cell_specimen_id {exc}") from None

    @_legacy('Consider using "dff_traces" instead.')
    def get_dff_traces(self, cell_specimen_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """(``ophys_timestamps``, dF/F as a (cells, frames) array) for the given cells.

        Rows come in table order, as AllenSDK gives them, whatever the order asked.
        """
        wanted = self._specimen_ids() if cell_specimen_ids is None else cell_specimen_ids
        traces = self.dff_traces
        if traces is None:
            raise VboError(f"{self._reader.name}: no dF/F traces (processing/ophys/dff)")
        rows = traces["dff"][traces.index.isin(wanted)]
        if len(rows) != len(wanted):
            raise VboError(
                f"{self._reader.name}: asked for {len(wanted)} cells, {len(rows)} of them found"
            )
        frames = len(self.ophys_timestamps)
        stack = np.vstack(rows.to_list()) if len(rows) else np.empty((0, frames), np.float32)
        return self.ophys_timestamps, stack

    def _specimen_ids(self) -> np.ndarray:
        import pandas as pd

        ids = cells.specimen_index(self._rois).values
        if len(ids) and pd.isna(ids).all():
            raise VboError(
                f"{self._reader.name}: cell_specimen_id values not assigned "
                f"for {self.ophys_experiment_id}"
            )
        return ids


def open_experiment(source: str | os.PathLike | BinaryIO, **kwargs) -> BehaviorOphysExperiment:
    """Open an experiment NWB file as a `BehaviorOphysExperiment`.

    Parameters
    ----------
    source : str, os.PathLike or binary file-like object
        The NWB file (local path or file-like object).
    **kwargs
        ``events_filter_scale_seconds`` (2/31), ``events_filter_n_time_steps`` (20),
        ``exclude_invalid_rois`` (True), ``eye_tracking_z_threshold`` (3.0),
        ``eye_tracking_dilation_frames`` (2).

    Raises
    ------
    VboError
        One line naming the file: missing, not NWB, or without ``processing/ophys``.
    """
    return BehaviorOphysExperiment.open(source, **kwargs)

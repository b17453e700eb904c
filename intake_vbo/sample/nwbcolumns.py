"""The building blocks of the sample's pynwb templates: compressed data and table columns.

Shared by :mod:`.nwbtemplate` and :mod:`.nwbophys`, which both build on them.
"""

from __future__ import annotations

import numpy as np

_NO = "No description"
_DESCRIPTIONS = {
    "start_time": "Start time of epoch, in seconds",
    "stop_time": "Stop time of epoch, in seconds",
    "stimulus_block": "Index of contiguous presentations of one stimulus type",
    "stimulus_name": "Name of stimulus",
    "cell_specimen_id": "Unified id of segmented cell across experiments (after cell matching)",
    "height": "Height of ROI in pixels",
    "width": "Width of ROI in pixels",
    "mask_image_plane": "Which image plane an ROI resides on. Overlapping ROIs are stored on "
    "different mask image planes.",
    "max_correction_down": "Max motion correction in down direction in pixels",
    "max_correction_left": "Max motion correction in left direction in pixels",
    "max_correction_right": "Max motion correction in right direction in pixels",
    "max_correction_up": "Max motion correction in up direction in pixels",
    "valid_roi": "Indicates if cell classification found the ROI to be a cell or not",
    "x": "x position of ROI in Image Plane in pixels (top left corner)",
    "y": "y position of ROI in Image Plane in pixels (top left corner)",
    "image_mask": "Image masks for each ROI",
}
SHRINK = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def packed(data, **options):
    """Data written chunked and compressed (``gzip`` unless told otherwise)."""
    from hdmf.backends.hdf5 import H5DataIO

    return H5DataIO(np.asarray(data), **{**SHRINK, **options})


def column(name: str, data, description: str | None = None):
    from hdmf.common import VectorData

    return VectorData(name=name, description=description or _DESCRIPTIONS.get(name, _NO), data=data)

"""Eye tracking and the eye-tracking rig geometry, as AllenSDK 2.16.2 gives them.

The stored ``area`` and ``likely_blink`` are not used: like AllenSDK, the areas are taken
from ``area_raw`` and blinks recomputed (z-score outliers, then a binary dilation), with
numpy in place of scipy (same values; z-scores agree to rounding).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .file import NWBReader

EYE_COLUMNS = (
    "timestamps",
    "cr_area",
    "eye_area",
    "pupil_area",
    "likely_blink",
    "pupil_area_raw",
    "cr_area_raw",
    "eye_area_raw",
    "cr_center_x",
    "cr_center_y",
    "cr_width",
    "cr_height",
    "cr_phi",
    "eye_center_x",
    "eye_center_y",
    "eye_width",
    "eye_height",
    "eye_phi",
    "pupil_center_x",
    "pupil_center_y",
    "pupil_width",
    "pupil_height",
    "pupil_phi",
)
# set to NaN on likely blinks (AllenSDK's filter_on_blinks); centres and cr fits are kept
BLINK_MASKED = (
    "eye_area",
    "pupil_area",
    "cr_area",
    "eye_width",
    "eye_height",
    "eye_phi",
    "pupil_width",
    "pupil_height",
    "pupil_phi",
)
# our prefix -> the EllipseSeries in acquisition/EyeTracking
SERIES = {"cr": "corneal_reflection_tracking", "eye": "eye_tracking", "pupil": "pupil_tracking"}
EYE_GROUP = "acquisition/EyeTracking"
RIG_GROUP = "processing/eye_tracking_rig_metadata/eye_tracking_rig_metadata"


def zscore_outliers(values: np.ndarray, threshold: float) -> np.ndarray:
    """|z| > threshold per column, NaN ignored (``scipy.stats.zscore(nan_policy='omit')``).

    Parameters
    ----------
    values : ndarray
        Shape (n, k): one column per series.
    threshold : float
        The |z-score| above which a value is an outlier.

    Returns
    -------
    ndarray of bool
        Shape (n,): whether any column of the row is an outlier.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
        z = np.abs((values - mean) / std)
    return (z > threshold).any(axis=1)


def dilate(mask: np.ndarray, frames: int) -> np.ndarray:
    """``scipy.ndimage.binary_dilation(mask, iterations=frames)`` in 1-D: widen by ``frames``."""
    if frames <= 0 or not mask.any():
        return mask.copy()
    hits = np.convolve(mask.astype(np.int64), np.ones(2 * frames + 1, dtype=np.int64), "same")
    return hits > 0


def likely_blinks(
    eye_area: np.ndarray, pupil_area: np.ndarray, z_threshold: float, dilation_frames: int
) -> np.ndarray:
    """Frames where a fit failed (NaN) or an area is an outlier, widened by ``dilation_frames``."""
    areas = np.column_stack([eye_area, pupil_area])
    blinks = np.isnan(eye_area) | np.isnan(pupil_area) | zscore_outliers(areas, z_threshold)
    return dilate(blinks, dilation_frames)


def _empty_eye_tracking():
    import pandas as pd

    # AllenSDK's _get_empty_df, as pandas 1.5 builds it: float64 columns, an object index
    columns = {c: np.empty(0) for c in EYE_COLUMNS}
    return pd.DataFrame(columns, index=pd.Index([], dtype=object, name="frame"))


def read_eye_tracking(reader: NWBReader, z_threshold: float = 3.0, dilation_frames: int = 2):
    """The eye-tracking table indexed by ``frame``; an empty one when the file has none.

    Parameters
    ----------
    reader : NWBReader
        The open file.
    z_threshold : float
        |z-score| of eye or pupil area above which a frame is an outlier.
    dilation_frames : int
        Frames by which blinks are widened.
    """
    import pandas as pd

    if not reader.has(EYE_GROUP):
        return _empty_eye_tracking()
    columns: dict[str, np.ndarray] = {}
    for prefix, series in SERIES.items():
        path = f"{EYE_GROUP}/{series}"
        centre = reader.read(f"{path}/data")
        columns[f"{prefix}_area_raw"] = reader.read(f"{path}/area_raw")
        columns[f"{prefix}_center_x"], columns[f"{prefix}_center_y"] = centre[:, 0], centre[:, 1]
        columns[f"{prefix}_width"] = reader.read(f"{path}/width")
        columns[f"{prefix}_height"] = reader.read(f"{path}/height")
        columns[f"{prefix}_phi"] = reader.read(f"{path}/angle")
    for prefix in SERIES:
        columns[f"{prefix}_area"] = columns[f"{prefix}_area_raw"].copy()
    columns["timestamps"] = reader.read(f"{EYE_GROUP}/eye_tracking/timestamps")
    blink = likely_blinks(
        columns["eye_area_raw"], columns["pupil_area_raw"], z_threshold, dilation_frames
    )
    columns["likely_blink"] = blink
    for name in BLINK_MASKED:
        columns[name] = np.where(blink, np.nan, columns[name])
    frame = pd.DataFrame({c: columns[c] for c in EYE_COLUMNS})
    frame.index.name = "frame"
    return frame


class Coordinates:
    """A point in 3-D (AllenSDK's ``Coordinates``): ``.x .y .z``, iterates as (x, y, z)."""

    __slots__ = ("x", "y", "z")

    def __init__(self, x: float, y: float, z: float):
        self.x, self.y, self.z = x, y, z

    def __iter__(self) -> Iterator[float]:
        yield from (self.x, self.y, self.z)

    def __eq__(self, other) -> bool:
        try:
            return list(self) == [float(v) for v in other]
        except TypeError:
            return NotImplemented

    __hash__ = None  # mutable-looking value object, like AllenSDK's

    def __repr__(self) -> str:
        return f"Coordinates(x={self.x}, y={self.y}, z={self.z})"

    def __str__(self) -> str:
        return f"[{self.x}, {self.y}, {self.z}]"


def read_rig_geometry(reader: NWBReader) -> dict:
    """Camera, LED and monitor geometry as `Coordinates`, plus ``equipment``; {} if absent."""
    if not reader.has(RIG_GROUP):
        return {}

    def point(name: str) -> Coordinates:
        return Coordinates(*(float(v) for v in reader.read(f"{RIG_GROUP}/{name}")[:3]))

    return {
        "camera_position_mm": point("camera_position"),
        "camera_rotation_deg": point("camera_rotation"),
        "equipment": reader.attrs(RIG_GROUP).get("equipment"),
        "led_position": point("led_position"),
        "monitor_position_mm": point("monitor_position"),
        "monitor_rotation_deg": point("monitor_rotation"),
    }

"""The experiment-level ophys parts: images, frame times, motion correction, metadata.

Pure functions over an open `NWBReader`, as AllenSDK 2.16.2's ``BehaviorOphysExperiment``
presents them. Each reads only its own datasets, with h5py, and imports
only numpy (pandas where a DataFrame is returned), so that ``open_experiment(p).max_projection``
needs neither pandas nor pynwb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..base.errors import VboError

if TYPE_CHECKING:
    from .file import NWBReader

OPHYS = "processing/ophys"
IMAGES = f"{OPHYS}/images"
CELL_TABLE = f"{OPHYS}/image_segmentation/cell_specimen_table"
# the imaging plane AllenSDK reads: the cell table's link to it
IMAGING_PLANE = f"{CELL_TABLE}/imaging_plane"
DFF = f"{OPHYS}/dff/traces"
METADATA = "general/metadata"

# AllenSDK's ReporterLine.parse_indicator: the first substring found wins
_INDICATORS = (("GCaMP6f", "GCaMP6f"), ("GC6f", "GCaMP6f"), ("GCaMP6s", "GCaMP6s"))


class Image(NamedTuple):
    """A 2-D image as AllenSDK's ``image_api.Image``: ``data``, ``spacing`` (mm), ``unit``.

    Equality compares the pixels, the spacing and the unit, as AllenSDK's does.
    """

    data: np.ndarray
    spacing: tuple
    unit: str = "mm"

    def __eq__(self, other) -> bool:
        return (
            np.array_equal(self.data, other.data)
            and self.spacing == other.spacing
            and self.unit == other.unit
        )

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # an ndarray inside: unhashable, as AllenSDK's

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.data, dtype=dtype)


def image_spacing(reader: NWBReader, name: str) -> tuple[float, float] | None:
    """The pixel size (mm) of image ``name``, as a pair of Python floats; None without it.

    AllenSDK's writer stores ``resolution = spacing / 10`` (the file calls it px/cm); its
    reader multiplies back and passes the pair through SimpleITK, which gives floats.
    """
    resolution = reader.attrs(f"{IMAGES}/{name}").get("resolution")
    if resolution is None:
        return None
    side = float(resolution * 10)
    return (side, side)


def read_image(reader: NWBReader, name: str) -> Image | None:
    """``processing/ophys/images/<name>`` as an `Image` (dtype as stored), or None."""
    path = f"{IMAGES}/{name}"
    if reader.kind(path) != "dataset":
        return None
    return Image(reader.read(path), image_spacing(reader, name), "mm")


def is_multiplane(reader: NWBReader) -> bool:
    """Whether ``/general/metadata`` says the plane is one of a group (count > 1)."""
    count = reader.attrs(METADATA).get("imaging_plane_group_count")
    return count is not None and int(count) > 1


def ophys_timestamps(reader: NWBReader, multiplane: bool) -> np.ndarray | None:
    """Frame times of the dF/F traces, cut to the trace length as AllenSDK cuts them.

    A single-plane file may have more timestamps than frames (sync sentinels): the extra
    ones are dropped. Fewer timestamps than frames, or any difference for a multiplane
    file, is an error, as in AllenSDK. None without dF/F traces.
    """
    if not reader.has(f"{DFF}/timestamps"):
        return None
    frames = reader.h5[f"{DFF}/data"].shape[0] if reader.has(f"{DFF}/data") else None
    stamps = reader.read(f"{DFF}/timestamps")
    if frames is None or frames == len(stamps):
        return stamps
    if frames < len(stamps) and not multiplane:
        return stamps[:frames]
    raise VboError(
        f"{reader.name}: {DFF} has {frames} frames but {len(stamps)} timestamps"
        + (" (a multiplane plane needs equal counts)" if multiplane else "")
    )


def motion_correction(reader: NWBReader):
    """DataFrame ``x``, ``y`` (pixels per frame), RangeIndex; None if not recorded."""
    paths = {axis: f"{OPHYS}/ophys_motion_correction_{axis}/data" for axis in "xy"}
    if not all(reader.has(path) for path in paths.values()):
        return None
    import pandas as pd

    return pd.DataFrame({axis: reader.read(path) for axis, path in paths.items()})


def ophys_experiment_id(reader: NWBReader) -> int:
    """``int(identifier)``: AllenSDK reads the id from there, not from ``/general/metadata``."""
    text = reader.read_text("identifier")
    try:
        return int(text)
    except ValueError:
        raise VboError(f"{reader.name}: identifier {text!r} is not an experiment id") from None


def ophys_session_id(reader: NWBReader):
    """``/general/metadata`` attribute ``ophys_session_id`` (numpy int, as AllenSDK)."""
    attrs = reader.attrs(METADATA)
    if "ophys_session_id" not in attrs:
        raise VboError(f"{reader.name}: {METADATA} has no ophys_session_id")
    return attrs["ophys_session_id"]


def frame_rate(reader: NWBReader) -> float:
    """The imaging rate (Hz) of the cell table's imaging plane."""
    return reader.read(f"{IMAGING_PLANE}/imaging_rate")


def parse_indicator(reporter_line: str | None) -> str | None:
    """AllenSDK's indicator: GCaMP6f for a GCaMP6f / GC6f reporter, GCaMP6s, else None."""
    if reporter_line is None:
        return None
    for part, indicator in _INDICATORS:
        if part in reporter_line:
            return indicator
    return None


def _emission_lambda(reader: NWBReader) -> Any:
    """``optical_channel[0].emission_lambda``: the first OpticalChannel of the plane."""
    for path in sorted(reader.walk(IMAGING_PLANE)):
        if reader.attrs(path).get("neurodata_type") == "OpticalChannel":
            return reader.read(f"{path}/emission_lambda")
    return None


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _plane_value(reader: NWBReader, name: str, text: bool = False) -> Any:
    path = f"{IMAGING_PLANE}/{name}"
    if not reader.has(path):
        return None
    return reader.read_text(path) if text else reader.read(path)


def ophys_metadata(reader: NWBReader, behavior: dict, multiplane: bool) -> dict:
    """The experiment's 28-key metadata dict: the session's 14, then AllenSDK's ophys keys.

    Parameters
    ----------
    reader : NWBReader
        The open experiment file.
    behavior : dict
        The session's metadata dict (not changed).
    multiplane : bool
        Whether the plane belongs to a group (`is_multiplane`).

    Notes
    -----
    As AllenSDK 2.16.2: ``indicator`` is parsed from the reporter line (not the imaging
    plane's ``indicator``), ``project_code`` takes the ophys value in the session key's
    place, ``imaging_depth`` is None when ``ophys_container_id`` is, and
    ``imaging_plane_group`` / ``_count`` are None / 0 unless multiplane.
    """
    attrs = reader.attrs(METADATA)
    container = attrs.get("ophys_container_id")
    ophys = {
        "indicator": parse_indicator(behavior.get("reporter_line")),
        "emission_lambda": _emission_lambda(reader),
        "excitation_lambda": _plane_value(reader, "excitation_lambda"),
        "ophys_container_id": container,
        "field_of_view_height": attrs.get("field_of_view_height"),
        "field_of_view_width": attrs.get("field_of_view_width"),
        "imaging_depth": None if container is None else attrs.get("imaging_depth"),
        "targeted_imaging_depth": attrs.get("targeted_imaging_depth"),
        "imaging_plane_group": attrs.get("imaging_plane_group") if multiplane else None,
        "imaging_plane_group_count": attrs.get("imaging_plane_group_count") if multiplane else 0,
        "ophys_experiment_id": ophys_experiment_id(reader),
        "ophys_frame_rate": _plane_value(reader, "imaging_rate"),
        "ophys_session_id": attrs.get("ophys_session_id"),
        "project_code": _or(attrs.get("project_code"), "Not Available"),
        "targeted_structure": _plane_value(reader, "location", text=True),
    }
    return {**behavior, **ophys}

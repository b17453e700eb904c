"""What a session or an experiment shows of itself: its key metadata and a thumbnail.

The views' ``__repr__`` and ``_repr_html_`` (what a notebook shows) are built here. They
are cheap: they read the metadata (HDF5 attributes and a few scalar datasets, kept on
the object as its ``metadata``), the shapes of the trials and traces (from the HDF5
headers, no data), and for an experiment its max projection (kept as
``max_projection``); no other dataset. A closed file shows what was read before it
closed; a file whose metadata cannot be read still shows its name.
"""

from __future__ import annotations

from typing import Any

from ..base.display import html_card, html_table, png_bytes, text_line, thumbnail
from ..base.errors import VboError

# A view is a `session.BehaviorSession` (or its subclass, the experiment); not imported
# here, since the session imports this module.
View = Any

# the metadata keys shown, in this order (AllenSDK's names)
SESSION_KEYS = (
    "behavior_session_id", "mouse_id", "session_type", "date_of_acquisition",
    "equipment_name", "cre_line", "reporter_line", "driver_line", "sex", "age_in_days",
    "project_code",
)  # fmt: skip
EXPERIMENT_KEYS = (
    "ophys_experiment_id", "ophys_session_id", "ophys_container_id", *SESSION_KEYS,
    "targeted_structure", "imaging_depth", "indicator", "ophys_frame_rate",
)  # fmt: skip
# the few keys a one-line repr names
HEADLINE = ("mouse_id", "session_type", "cre_line", "targeted_structure", "imaging_depth")
# counts read from the shapes in the HDF5 headers: (label, dataset, axis)
SESSION_SHAPES = (("trials", "intervals/trials/id", 0),)
EXPERIMENT_SHAPES = (
    *SESSION_SHAPES,
    ("ROIs in file", "processing/ophys/image_segmentation/cell_specimen_table/id", 0),
    ("ophys frames", "processing/ophys/dff/traces/data", 0),
)


def _is_experiment(view: View) -> bool:
    # asked of the class: asking the object would read the image
    return hasattr(type(view), "max_projection")


def _metadata(view: View) -> dict[str, Any] | None:
    """The view's metadata dict if it is kept or can be read; else None."""
    if "metadata" in view._cache or not view.closed:
        try:
            return view.metadata
        except VboError:  # a damaged file still shows its name
            return None
    return None


def _counts(view: View) -> list[tuple[str, int]]:
    """How many trials, ROIs and frames the file holds, from dataset shapes only."""
    if view.closed:
        return []
    h5, found = view._reader.h5, []
    for label, path, axis in EXPERIMENT_SHAPES if _is_experiment(view) else SESSION_SHAPES:
        node = h5.get(path)
        shape = getattr(node, "shape", None)
        if shape is not None and len(shape) > axis:
            found.append((label, int(shape[axis])))
    return found


def rows(view: View) -> list[tuple[str, Any]]:
    """(name, value) pairs a view shows: metadata, counts, the file and its state."""
    keys = EXPERIMENT_KEYS if _is_experiment(view) else SESSION_KEYS
    meta = _metadata(view) or {}
    shown = [(key, meta[key]) for key in keys if key in meta]
    shown += _counts(view)
    shown.append(("file", view._reader.name))
    shown.append(("state", "closed" if view.closed else "open"))
    return shown


def title(view: View) -> str:
    """The view's class and its id: ``BehaviorOphysExperiment 951980471``."""
    meta = _metadata(view) or {}
    key = "ophys_experiment_id" if _is_experiment(view) else "behavior_session_id"
    ident = meta.get(key)
    name = type(view).__name__
    return name if ident is None else f"{name} {int(ident)}"


def _picture(view: View) -> bytes | None:
    """The max projection's thumbnail as a PNG; None for a session or without one."""
    if not _is_experiment(view) or ("max_projection" not in view._cache and view.closed):
        return None
    try:
        image = view.max_projection
    except VboError:
        return None
    return None if image is None else png_bytes(thumbnail(image.data))


def to_html(view: View) -> str:
    """The notebook's view: a table of :func:`rows`, with the thumbnail for an experiment."""
    png = _picture(view)
    return html_card(html_table(title(view), rows(view)), png, alt="max projection")


def to_text(view: View) -> str:
    """One line: the class, its id, a few key values, the file and its state."""
    shown = rows(view)
    picked = [(name, value) for name, value in shown if name in HEADLINE]
    where = [(name, value) for name, value in shown if name in ("file", "state")]
    return text_line(title(view), picked + where)

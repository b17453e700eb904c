"""How our objects show themselves: ids as integers, small HTML tables, PNG thumbnails.

Jupyter shows an object's ``_repr_html_``; the pieces here build one without an imaging
library (a PNG is an 8-bit image in a zlib stream with a few checksummed chunks) and
without pandas, except :func:`integer_ids`, which formats a frame for printing.

Ids are integers, but a table column of ids with a null in it is float64 in pandas (and
in AllenSDK: ``cell_specimen_id`` with a -1 becomes NaN), which prints as ``1.086e+09``.
Every display of ours writes ids as integers; the values themselves stay as they are.

>>> format_value("cell_specimen_id", 1086000000.0)
'1086000000'
>>> format_value("ophys_frame_rate", 31.0)
'31'
>>> png_size(png_bytes(thumbnail([[0, 1], [2, 3]], 192)))
(2, 2)
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import struct
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
THUMBNAIL_SIDE = 192  # pixels: the longest side of a repr's thumbnail, at most
# the percentiles mapped to black and white: a few bright pixels must not grey the rest
CONTRAST = (0.5, 99.5)


# -- ids and values as text ----------------------------------------------------------------


def is_id_name(name: Any) -> bool:
    """Whether a column, index or key ``name`` holds ids (``*_id``, ``id``)."""
    return isinstance(name, str) and (name == "id" or name.endswith("_id"))


def _integral(value: float) -> bool:
    return math.isfinite(value) and value == int(value) and abs(value) < 2**63


def format_value(name: str, value: Any) -> str:
    """``value`` as one short line of text, ids and whole numbers written as integers.

    Parameters
    ----------
    name : str
        What the value is (a metadata key or a column name); ids (:func:`is_id_name`)
        are always written as integers.
    value : object
        A number, text, a list, a timestamp, a UUID or None.
    """
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "NaN"
        if _integral(value):  # ids and whole numbers alike: 1086000000, 31, 175
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(format_value(name, v) for v in value) + "]"
    return str(value)


def integer_ids(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """A copy of ``frame`` for printing, its float id columns and index as integers.

    An id column (or index, or a Series of ids) that is float64 only because it holds
    nulls (NaN) becomes ``Int64`` (``<NA>`` for the nulls); every other column, and
    ``frame`` itself, is left as it is. Print the result, or show it in a notebook;
    compute with ``frame``.

    >>> import pandas as pd
    >>> ids = pd.Index([1.086e9, float("nan")], name="cell_specimen_id")
    >>> shown = integer_ids(pd.DataFrame({"x": [0.5, 0.25]}, ids))
    >>> str(shown.index.dtype), int(shown.index[0])
    ('Int64', 1086000000)
    """
    import pandas as pd

    shown = frame.copy(deep=False)
    if isinstance(frame, pd.Series):
        if is_id_name(frame.name) and _float_ids(frame):
            shown = frame.astype("Int64")
    else:
        for name in frame.columns:
            if is_id_name(name) and _float_ids(frame[name]):
                shown[name] = frame[name].astype("Int64")
    names = list(frame.index.names)
    if any(is_id_name(n) for n in names):
        levels = [frame.index.get_level_values(i) for i in range(len(names))]
        levels = [
            pd.Index(level).astype("Int64") if is_id_name(n) and _float_ids(level) else level
            for n, level in zip(names, levels, strict=True)
        ]
        shown.index = (
            levels[0].rename(names[0])
            if len(levels) == 1
            else pd.MultiIndex.from_arrays(levels, names=names)
        )
    return shown


def _float_ids(values) -> bool:
    """Whether ``values`` are floats that are all whole numbers where not null."""
    array = np.asarray(values)
    if array.dtype.kind != "f":
        return False
    present = array[~np.isnan(array)]
    return bool(np.all(present == np.round(present)) and np.all(np.abs(present) < 2**63))


# -- images ----------------------------------------------------------------------------


def thumbnail(image: Any, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """An 8-bit grayscale copy of a 2-D ``image``, at most ``side`` pixels a side.

    Shrunk by averaging blocks of whole pixels; grey levels stretched between the
    :data:`CONTRAST` percentiles; NaN shown black.
    """
    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2 or not data.size:
        raise ValueError(f"a thumbnail needs a 2-D image, not shape {data.shape}")
    step = math.ceil(max(data.shape) / side)
    rows, cols = data.shape[0] // step, data.shape[1] // step
    if step > 1 and rows and cols:  # the mean of each step x step block of whole pixels
        blocks = data[: rows * step, : cols * step].reshape(rows, step, cols, step)
        data = blocks.mean(axis=(1, 3))
    elif step > 1:  # a sliver thinner than a block: every step-th pixel
        data = data[::step, ::step]
    return to_gray(data)


def to_gray(data: np.ndarray) -> np.ndarray:
    """Values as uint8 grey levels between the :data:`CONTRAST` percentiles (NaN: 0)."""
    finite = data[np.isfinite(data)]
    if not finite.size:
        return np.zeros(data.shape, np.uint8)
    low, high = np.percentile(finite, CONTRAST)
    if high <= low:
        low, high = finite.min(), finite.max()
    scaled = (data - low) / ((high - low) or 1.0) * 255.0
    return np.nan_to_num(np.clip(scaled, 0, 255), nan=0.0).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """An uint8 image, (height, width) grey or (height, width, 3) RGB, as a PNG file."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim == 2:
        color = 0
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        color = 2
    else:
        raise ValueError(f"a PNG needs grey (H, W) or RGB (H, W, 3) pixels, not {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    # each scanline starts with its filter type; 0 (none) keeps the encoder trivial
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, from its header; ValueError if it is not one."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", png[16:24])


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, for an ``<img src=...>`` inside HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# -- HTML and text ---------------------------------------------------------------------


def html_table(title: str, rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column HTML table (name, value) under a bold ``title``; everything escaped."""
    style = "text-align:left;padding:1px 8px"
    body = "".join(
        f'<tr><th style="{style};white-space:nowrap">{html.escape(str(name))}</th>'
        f'<td style="{style};overflow-wrap:anywhere">'  # a long path wraps, not overflows
        f"{html.escape(format_value(name, value))}</td></tr>"
        for name, value in rows
    )
    caption = f'<caption style="text-align:left"><b>{html.escape(title)}</b></caption>'
    return f'<table class="vbo-table">{caption}{body}</table>'


def html_card(table: str, png: bytes | None = None, alt: str = "") -> str:
    """``table`` with an optional picture to its left, as one block of HTML."""
    picture = ""
    if png is not None:
        width, height = png_size(png)
        scale = max(1, THUMBNAIL_SIDE // max(width, height))  # small images drawn larger
        picture = (
            f'<img src="{data_uri(png)}" width="{width * scale}" height="{height * scale}" '
            f'alt="{html.escape(alt)}" title="{html.escape(alt)}" '
            'style="image-rendering:pixelated;margin-right:1em">'
        )
    return (
        f'<div class="vbo-repr" style="display:flex;align-items:flex-start">{picture}{table}</div>'
    )


def text_line(title: str, rows: Iterable[tuple[str, Any]]) -> str:
    """``<title name=value, ...>``: a plain repr of the same rows."""
    fields = ", ".join(f"{name}={format_value(name, value)}" for name, value in rows)
    return f"<{title}{': ' if fields else ''}{fields}>"

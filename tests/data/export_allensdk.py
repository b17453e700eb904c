"""Export what AllenSDK 2.16.2 returns for every attribute of the NWB fixtures, as JSON.

Run with the AllenSDK side venv (``benchmarks/allensdk_venv.py`` makes it), from the
repository root::

    PYTHONHASHSEED=0 benchmarks/.allensdk-venv/bin/python tests/data/export_allensdk.py

It opens each fixture in ``../shared/nwb-fixtures`` (or ``$VBO_NWB_FIXTURES``) and
writes one JSON file per AllenSDK object into this folder:

- ``allensdk_experiment_900000013.json``: ``BehaviorOphysExperiment.from_nwb_path``
- ``allensdk_session_800000012.json``: ``BehaviorSession.from_nwb_path``
- ``allensdk_session_of_experiment_900000013.json``: ``BehaviorSession.from_nwb_path``
  on the experiment file

``PYTHONHASHSEED`` must be set (0): the tail of ``stimulus_presentations``' columns is
in Python ``set`` order. The script refuses to run without it and records it.

File layout (one top-level key per line, one attribute per line)::

    {"format": "allensdk-expected/1", "object": "BehaviorOphysExperiment",
     "opened_with": "...", "nwb_file": name, "nwb_sha256": ..., "environment": {...},
     "open_warnings": [...],
     "list_data_attributes_and_methods": [names, as AllenSDK returns them],
     "skipped": {"update_targeted_imaging_depth": reason},
     "attributes": {name: ENTRY, ...}}        # in list_data_attributes_and_methods order

ENTRY = {"how": "property" | "call" | "call(get_cell_specimen_ids())",
         "args": [VALUE...] (only with arguments), "warnings": ["Category: message"],
         and either "value": VALUE or "raises": {"exception": class name, "message": str}}

VALUE: every encoded value is a JSON object with a "type" key:

- ``{"type": "none"}`` (None), ``{"type": "na"}`` (pandas.NA), ``{"type": "nat"}``
- ``{"type": "bool", "value": true, "pytype": "numpy.bool_"}``
- ``{"type": "int", "value": 5, "pytype": "int" | "numpy.int64" ...}``
- ``{"type": "float", "value": FLOAT, "pytype": ...}``
- ``{"type": "str", "value": "..."}``
- ``{"type": "datetime", "iso": "2019-10-10T08:58:50+00:00", "tzinfo": repr(tzinfo)}``
- ``{"type": "uuid", "value": "00000000-..."}``
- ``{"type": "list" | "tuple", "items": [VALUE...]}``
- ``{"type": "dict", "items": [[key, VALUE], ...]}`` (keys in dict order)
- ``{"type": "Coordinates", "xyz": [FLOAT, FLOAT, FLOAT]}`` (rig geometry)
- ``{"type": "Image", "data": ARRAY, "spacing": VALUE (a tuple), "unit": "mm"}``
- ``{"type": "ndarray", ...ARRAY}``
- ``{"type": "DataFrame", "shape": [rows, cols], "index": INDEX, "columns": [COLUMN...]}``
- ``{"type": "object", "class": qualified name, "repr": repr}`` (fallback; none expected)

FLOAT: a JSON number (Python's repr, so it round-trips exactly; float32 values are
widened to float64 exactly) or the strings "nan", "inf", "-inf".

ARRAY (``"shape"``, ``"dtype"`` = ``str(a.dtype)``, then one of):

- bool: ``"true_flat"``: the C-order flat positions of the True values (exact);
- ``"values"``: all values, C-order flat (FLOAT for floats), when ``a.size`` is at most
  2000 (1024 for an array inside a DataFrame cell);
- otherwise ``"summary"``: ``{"sha256": of a.tobytes() (C order, this dtype),
  "sum", "abs_sum", "min", "max"`` (over non-NaN values, in float64, or exact ints),
  ``"nan_count", "nan_flat"`` (positions, when at most 500), ``"posinf_count",
  "neginf_count", "first"/"last"`` (8 values), ``"sample_positions"`` (16 evenly spaced
  flat positions) and ``"sample"`` (the values there)}.
- object arrays: ``"items": [VALUE...]``.

INDEX: ``{"name", "dtype", "class", "kind", "nullable"}`` plus ``"range": [start, stop,
step]`` when the values are such a range, else ``"values"`` as in COLUMN.

COLUMN: ``{"name", "dtype", "kind", "nullable"}`` plus, by kind:

- "bool", "integer" (not nullable), "float": ``"data": ARRAY`` of the column's values;
- "boolean" (pandas nullable), "integer" nullable (Int64, or object ints with None):
  ``"values"``: list with null for missing;
- "text" (object or str dtype, non-missing values all str): ``"values"``: strings,
  null for missing, and ``"missing": sorted list of how missing was spelled`` ("nan",
  "none", "na");
- "datetime": ``"values"``: ISO strings, null for NaT;
- "array" (every cell an ndarray): ``"cells": [ARRAY...]`` (one per row);
- "object" (anything else): ``"cells": [VALUE...]``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import math
import os
import platform
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = Path(os.environ.get("VBO_NWB_FIXTURES", REPO.parent / "shared" / "nwb-fixtures"))

FULL_LIMIT = 2000  # arrays up to this size are stored in full
CELL_FULL_LIMIT = 1024  # ... and arrays inside a DataFrame cell up to this size
NAN_POSITIONS_LIMIT = 500
N_EDGE = 8
N_SAMPLES = 16
SKIPPED = {"update_targeted_imaging_depth": "needs a LIMS database connection; not NWB"}


# ---------------------------------------------------------------------------- encoding
def enc_float(x) -> float | str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _pytype(x) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _scalar_values(a: np.ndarray) -> list:
    if a.dtype.kind == "f":
        return [enc_float(v) for v in a.ravel().tolist()]
    if a.dtype.kind in "iub":
        return a.ravel().tolist()
    raise TypeError(a.dtype)


def summary(a: np.ndarray) -> dict:
    flat = np.ascontiguousarray(a).ravel()
    n = flat.size
    out: dict = {"sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}
    if flat.dtype.kind == "f":
        f = flat.astype(np.float64)
        nan = np.isnan(f)
        finite = f[np.isfinite(f)]
        out["sum"] = enc_float(np.sum(finite)) if finite.size else 0.0
        out["abs_sum"] = enc_float(np.sum(np.abs(finite))) if finite.size else 0.0
        out["min"] = enc_float(np.min(finite)) if finite.size else None
        out["max"] = enc_float(np.max(finite)) if finite.size else None
        out["nan_count"] = int(nan.sum())
        if out["nan_count"] <= NAN_POSITIONS_LIMIT:
            out["nan_flat"] = np.flatnonzero(nan).tolist()
        out["posinf_count"] = int(np.isposinf(f).sum())
        out["neginf_count"] = int(np.isneginf(f).sum())
    else:  # integers: exact
        ints = flat.astype(object)
        out["sum"] = int(sum(ints))
        out["abs_sum"] = int(sum(abs(v) for v in ints))
        out["min"] = int(flat.min()) if n else None
        out["max"] = int(flat.max()) if n else None
    out["first"] = _scalar_values(flat[:N_EDGE])
    out["last"] = _scalar_values(flat[-N_EDGE:]) if n else []
    pos = sorted(set(np.linspace(0, n - 1, N_SAMPLES).round().astype(int).tolist())) if n else []
    out["sample_positions"] = pos
    out["sample"] = _scalar_values(flat[pos]) if pos else []
    return out


def enc_array(a: np.ndarray, limit: int = FULL_LIMIT) -> dict:
    a = np.asarray(a)
    out: dict = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.dtype.kind == "b":
        out["true_flat"] = np.flatnonzero(np.ascontiguousarray(a).ravel()).tolist()
    elif a.dtype.kind in "iuf":
        if a.size <= limit:
            out["values"] = _scalar_values(a)
        else:
            out["summary"] = summary(a)
    else:
        out["items"] = [enc(v) for v in a.ravel().tolist()]
    return out


def _is_missing(v) -> str | None:
    if v is None:
        return "none"
    if v is pd.NA:
        return "na"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if v is pd.NaT:
        return "nat"
    return None


def column_kind(s: pd.Series) -> tuple[str, bool]:
    """(kind, nullable) of a Series or Index, as the parity rules see it."""
    dtype = s.dtype
    if isinstance(dtype, pd.BooleanDtype):
        return "boolean", True
    if pd.api.types.is_bool_dtype(dtype):
        return "bool", False
    if pd.api.types.is_integer_dtype(dtype):
        return "integer", isinstance(dtype, pd.api.extensions.ExtensionDtype)
    if pd.api.types.is_float_dtype(dtype):
        return "float", False
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", True
    values = list(s)
    present = [v for v in values if _is_missing(v) is None]
    if pd.api.types.is_string_dtype(dtype) and all(isinstance(v, str) for v in present):
        return "text", True
    if present and all(isinstance(v, np.ndarray) for v in present) and len(present) == len(values):
        return "array", False
    if present and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present
    ):
        return "integer", True
    return "object", True


def enc_series(s: pd.Series, name) -> dict:
    kind, nullable = column_kind(s)
    out: dict = {"name": enc_name(name), "dtype": str(s.dtype), "kind": kind, "nullable": nullable}
    values = list(s)
    if kind in ("bool", "float") or (kind == "integer" and not nullable):
        out["data"] = enc_array(s.to_numpy())
    elif kind in ("boolean", "integer"):
        out["values"] = [
            None if _is_missing(v) else (bool(v) if kind == "boolean" else int(v)) for v in values
        ]
    elif kind == "text":
        out["values"] = [None if _is_missing(v) else v for v in values]
        out["missing"] = sorted({m for m in map(_is_missing, values) if m})
    elif kind == "datetime":
        out["values"] = [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in values]
    elif kind == "array":
        out["cells"] = [enc_array(v, CELL_FULL_LIMIT) for v in values]
    else:
        out["cells"] = [enc(v) for v in values]
    return out


def enc_name(name):
    return name if name is None or isinstance(name, str) else enc(name)


def enc_index(index: pd.Index) -> dict:
    s = pd.Series(index)
    kind, nullable = column_kind(s)
    out = {
        "name": enc_name(index.name),
        "dtype": str(index.dtype),
        "class": type(index).__name__,
        "kind": kind,
        "nullable": nullable,
    }
    if kind == "integer" and not nullable and len(index) > 1:
        v = index.to_numpy()
        step = int(v[1] - v[0])
        if step != 0 and np.array_equal(v, np.arange(v[0], v[0] + step * len(v), step)):
            out["range"] = [int(v[0]), int(v[0] + step * len(v)), step]
            return out
    col = enc_series(s, index.name)
    for key in ("data", "values", "cells", "missing"):
        if key in col:
            out[key] = col[key]
    return out


def enc(v) -> dict:
    if v is None:
        return {"type": "none"}
    if v is pd.NA:
        return {"type": "na"}
    if v is pd.NaT:
        return {"type": "nat"}
    if isinstance(v, (bool, np.bool_)):
        return {"type": "bool", "value": bool(v), "pytype": _pytype(v)}
    if isinstance(v, (int, np.integer)):
        return {"type": "int", "value": int(v), "pytype": _pytype(v)}
    if isinstance(v, (float, np.floating)):
        return {"type": "float", "value": enc_float(v), "pytype": _pytype(v)}
    if isinstance(v, str):
        return {"type": "str", "value": v}
    if isinstance(v, dt.datetime):
        return {"type": "datetime", "iso": v.isoformat(), "tzinfo": repr(v.tzinfo)}
    if isinstance(v, uuid.UUID):
        return {"type": "uuid", "value": str(v)}
    if isinstance(v, pd.DataFrame):
        return {
            "type": "DataFrame",
            "shape": list(v.shape),
            "index": enc_index(v.index),
            "columns": [enc_series(v.iloc[:, i], c) for i, c in enumerate(v.columns)],
        }
    if isinstance(v, np.ndarray):
        return {"type": "ndarray", **enc_array(v)}
    if type(v).__name__ == "Image" and hasattr(v, "spacing"):
        return {
            "type": "Image",
            "data": enc_array(v.data),
            "spacing": enc(v.spacing),
            "unit": v.unit,
        }
    if type(v).__name__ == "Coordinates":
        return {"type": "Coordinates", "xyz": [enc_float(c) for c in v]}
    if isinstance(v, dict):
        return {"type": "dict", "items": [[k, enc(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return {
            "type": type(v).__name__ if type(v) in (list, tuple) else "tuple",
            "items": [enc(x) for x in v],
        }
    return {"type": "object", "class": _pytype(v), "repr": repr(v)}


# ---------------------------------------------------------------------------- export
def _warning_lines(caught) -> list[str]:
    seen = []
    for w in caught:
        line = f"{w.category.__name__}: {str(w.message)[:200]}"
        if line not in seen:
            seen.append(line)
    return seen


def export(obj, names: list[str]) -> dict:
    attributes = {}
    for name in names:
        if name in SKIPPED:
            continue
        entry: dict = {}
        static = inspect.getattr_static(type(obj), name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if isinstance(static, property):
                    entry["how"] = "property"
                    value = getattr(obj, name)
                elif name == "get_cell_specimen_indices":
                    entry["how"] = "call(get_cell_specimen_ids())"
                    ids = obj.get_cell_specimen_ids()
                    entry["args"] = [enc(ids)]
                    value = obj.get_cell_specimen_indices(ids)
                else:
                    entry["how"] = "call"
                    value = getattr(obj, name)()
                entry["value"] = enc(value)
            except Exception as exc:  # recorded: AllenSDK raises on some fixtures
                entry["raises"] = {"exception": type(exc).__name__, "message": str(exc)}
        entry["warnings"] = _warning_lines(caught)
        attributes[name] = entry
    return attributes


def environment() -> dict:
    import allensdk
    import hdmf
    import pynwb
    import scipy

    return {
        "python": platform.python_version(),
        "allensdk": allensdk.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "pynwb": pynwb.__version__,
        "hdmf": hdmf.__version__,
        "scipy": scipy.__version__,
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
        "TZ": os.environ.get("TZ"),
        "local_utc_offset": str(dt.datetime.now().astimezone().utcoffset()),
    }


def dump(doc: dict, path: Path) -> None:
    """Compact JSON with one top-level key, and one attribute, per line."""

    def d(x):
        return json.dumps(x, separators=(",", ":"), allow_nan=False, ensure_ascii=False)

    lines = []
    for key, value in doc.items():
        if key == "attributes":
            inner = ",\n".join(f"{d(k)}:{d(v)}" for k, v in value.items())
            lines.append(f"{d(key)}:{{\n{inner}\n}}")
        else:
            lines.append(f"{d(key)}:{d(value)}")
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        sys.exit("run with PYTHONHASHSEED=0 (stimulus_presentations' column order depends on it)")
    from allensdk.brain_observatory.behavior.behavior_ophys_experiment import (
        BehaviorOphysExperiment,
    )
    from allensdk.brain_observatory.behavior.behavior_session import BehaviorSession

    exp_file = FIXTURES / "behavior_ophys_experiment_900000013.nwb"
    ses_file = FIXTURES / "behavior_session_800000012.nwb"
    jobs = [
        (BehaviorOphysExperiment, exp_file, "allensdk_experiment_900000013.json"),
        (BehaviorSession, ses_file, "allensdk_session_800000012.json"),
        (BehaviorSession, exp_file, "allensdk_session_of_experiment_900000013.json"),
    ]
    env = environment()
    for cls, nwb, out_name in jobs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            obj = cls.from_nwb_path(str(nwb))
        names = obj.list_data_attributes_and_methods()
        doc = {
            "format": "allensdk-expected/1",
            "object": cls.__name__,
            "opened_with": f"{cls.__name__}.from_nwb_path(path)  # default keyword arguments",
            "nwb_file": nwb.name,
            "nwb_sha256": hashlib.sha256(nwb.read_bytes()).hexdigest(),
            "environment": env,
            "open_warnings": _warning_lines(caught),
            "list_data_attributes_and_methods": names,
            "skipped": {k: v for k, v in SKIPPED.items() if k in names},
            "attributes": export(obj, names),
        }
        out = HERE / out_name
        dump(doc, out)
        print(
            f"{out.relative_to(REPO)}: {out.stat().st_size / 1e3:.1f} kB, "
            f"{len(doc['attributes'])} attributes"
        )


if __name__ == "__main__":
    main()

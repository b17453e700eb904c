"""Compare our objects' attributes with what AllenSDK 2.16.2 returned on the same file.

The expectations are ``tests/data/allensdk_*.json``, written by
``tests/data/export_allensdk.py`` (its docstring describes the encoding; README.md in
that folder says how to regenerate them). This module needs only numpy and pandas::

    doc = load_expected("allensdk_experiment_900000013.json")
    check_object(exp, doc)                      # names + every attribute, all failures listed
    assert_same(exp.trials, doc["attributes"]["trials"]["value"], "experiment.trials")
    decode(doc["attributes"]["trials"]["value"])  # the DataFrame back, when stored in full

"Same" is DESIGN.md's "Analysis views" rule: names; index name and values; columns and
their order; value kinds (bool, "boolean" (nullable), integer (+ nullability), float,
text (``str`` or ``object``), datetime, array per row); values, floats to
``rtol``/``atol`` (1e-12 by default) with NaN and ±inf in the same places. Float widths
(float32 vs float64) are not compared unless ``strict_dtype=True``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
RTOL = 1e-12
ATOL = 1e-12


def load_expected(name: str) -> dict:
    """One of the ``tests/data/allensdk_*.json`` documents."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- helpers
def _f(x) -> float:
    """An encoded FLOAT back to a float."""
    if isinstance(x, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[x]
    return float(x)


def _is_missing(v) -> bool:
    return (
        v is None
        or v is pd.NA
        or v is pd.NaT
        or (isinstance(v, (float, np.floating)) and math.isnan(v))
    )


def _fail(where: str, msg: str):
    raise AssertionError(f"{where}: {msg}")


def kind_of(s: pd.Series | pd.Index) -> tuple[str, bool]:
    """(kind, nullable) of a Series or Index: the same rules as the exporter's."""
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
    present = [v for v in values if not _is_missing(v)]
    if pd.api.types.is_string_dtype(dtype) and all(isinstance(v, str) for v in present):
        return "text", True
    if present and len(present) == len(values) and all(isinstance(v, np.ndarray) for v in present):
        return "array", False
    if present and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present
    ):
        return "integer", True
    return "object", True


def _close(a: float, e: float, rtol: float, atol: float) -> bool:
    if math.isnan(e) or math.isnan(a):
        return math.isnan(e) and math.isnan(a)
    if math.isinf(e) or math.isinf(a):
        return a == e
    return abs(a - e) <= atol + rtol * abs(e)


# ---------------------------------------------------------------------------- arrays
def _summary(a: np.ndarray, positions: list[int]) -> dict:
    flat = np.ascontiguousarray(a).ravel()
    out: dict = {}
    if flat.dtype.kind == "f":
        f = flat.astype(np.float64)
        finite = f[np.isfinite(f)]
        out["sum"] = float(np.sum(finite)) if finite.size else 0.0
        out["abs_sum"] = float(np.sum(np.abs(finite))) if finite.size else 0.0
        out["min"] = float(np.min(finite)) if finite.size else None
        out["max"] = float(np.max(finite)) if finite.size else None
        out["nan_flat"] = np.flatnonzero(np.isnan(f)).tolist()
        out["nan_count"] = len(out["nan_flat"])
        out["posinf_count"] = int(np.isposinf(f).sum())
        out["neginf_count"] = int(np.isneginf(f).sum())
    else:
        ints = flat.astype(object)
        out["sum"] = int(sum(ints))
        out["abs_sum"] = int(sum(abs(v) for v in ints))
        out["min"] = int(flat.min()) if flat.size else None
        out["max"] = int(flat.max()) if flat.size else None
    out["first"] = flat[:8].tolist()
    out["last"] = flat[-8:].tolist() if flat.size else []
    out["sample"] = flat[positions].tolist() if positions else []
    return out


def _compare_flat(
    actual: list,
    expected: list,
    is_float: bool,
    where: str,
    what: str,
    rtol: float,
    atol: float,
    positions=None,
) -> None:
    if len(actual) != len(expected):
        _fail(where, f"{what}: {len(actual)} values, AllenSDK has {len(expected)}")
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        ok = _close(float(a), _f(e), rtol, atol) if is_float else a == e
        if not ok:
            pos = positions[i] if positions is not None else i
            _fail(where, f"{what} at flat position {pos}: {a!r}, AllenSDK has {e!r}")


def assert_array(
    actual,
    expected: dict,
    where: str,
    rtol: float = RTOL,
    atol: float = ATOL,
    strict_dtype: bool = False,
) -> None:
    """``actual`` (an ndarray) against an encoded ARRAY."""
    if not isinstance(actual, np.ndarray):
        _fail(where, f"expected an ndarray, got {type(actual).__name__}")
    shape = tuple(expected["shape"])
    if actual.shape != shape:
        _fail(where, f"shape {actual.shape}, AllenSDK has {shape}")
    edtype = np.dtype(expected["dtype"]) if expected["dtype"] != "object" else np.dtype(object)
    ekind = {"b": "b", "i": "i", "u": "i", "f": "f"}.get(edtype.kind, "O")
    akind = {"b": "b", "i": "i", "u": "i", "f": "f"}.get(actual.dtype.kind, "O")
    if akind != ekind or (strict_dtype and actual.dtype != edtype):
        _fail(where, f"dtype {actual.dtype}, AllenSDK has {edtype}")
    flat = np.ascontiguousarray(actual).ravel()
    is_float = ekind == "f"
    if "true_flat" in expected:
        got = np.flatnonzero(flat).tolist()
        if got != expected["true_flat"]:
            diff = sorted(set(got) ^ set(expected["true_flat"]))
            _fail(where, f"True at different positions (first differences: {diff[:10]})")
    elif "values" in expected:
        _compare_flat(flat.tolist(), expected["values"], is_float, where, "value", rtol, atol)
    elif "summary" in expected:
        s = expected["summary"]
        if (
            str(actual.dtype) == expected["dtype"]
            and hashlib.sha256(flat.tobytes()).hexdigest() == s["sha256"]
        ):
            return  # bit-identical
        got = _summary(actual, s["sample_positions"])
        for key in ("nan_count", "posinf_count", "neginf_count"):
            if key in s and got[key] != s[key]:
                _fail(where, f"{key} {got[key]}, AllenSDK has {s[key]}")
        if "nan_flat" in s and got["nan_flat"] != s["nan_flat"]:
            diff = sorted(set(got["nan_flat"]) ^ set(s["nan_flat"]))
            _fail(where, f"NaN at different positions (first differences: {diff[:10]})")
        if is_float:
            abs_sum = _f(s["abs_sum"])
            for key in ("sum", "abs_sum"):
                if abs(got[key] - _f(s[key])) > atol + rtol * max(abs_sum, 1.0):
                    _fail(where, f"{key} {got[key]!r}, AllenSDK has {s[key]!r}")
            for key in ("min", "max"):
                if (s[key] is None) != (got[key] is None) or (
                    s[key] is not None and not _close(got[key], _f(s[key]), rtol, atol)
                ):
                    _fail(where, f"{key} {got[key]!r}, AllenSDK has {s[key]!r}")
        else:
            for key in ("sum", "abs_sum", "min", "max"):
                if got[key] != s[key]:
                    _fail(where, f"{key} {got[key]!r}, AllenSDK has {s[key]!r}")
        n = flat.size
        _compare_flat(got["first"], s["first"], is_float, where, "value", rtol, atol)
        _compare_flat(
            got["last"],
            s["last"],
            is_float,
            where,
            "value",
            rtol,
            atol,
            positions=list(range(max(n - 8, 0), n)),
        )
        _compare_flat(
            got["sample"],
            s["sample"],
            is_float,
            where,
            "value",
            rtol,
            atol,
            positions=s["sample_positions"],
        )
    elif "items" in expected:
        items = flat.tolist()
        if len(items) != len(expected["items"]):
            _fail(where, f"{len(items)} items, AllenSDK has {len(expected['items'])}")
        for i, (a, e) in enumerate(zip(items, expected["items"], strict=True)):
            assert_same(a, e, f"{where}[{i}]", rtol, atol, strict_dtype)


# ---------------------------------------------------------------------------- frames
def _labels(index: pd.Index) -> list:
    return list(index)


def _assert_values(
    actual: pd.Series | pd.Index, col: dict, where: str, rtol, atol, strict_dtype, labels: list
) -> None:
    kind = col["kind"]
    if "data" in col:
        values = actual.to_numpy()
        if kind == "integer" and values.dtype == object:
            values = values.astype(np.int64)
        try:
            assert_array(values, col["data"], where, rtol, atol, strict_dtype)
        except AssertionError as err:
            raise AssertionError(_with_row(str(err), labels)) from None
    elif "values" in col:
        got = list(actual)
        exp = col["values"]
        if len(got) != len(exp):
            _fail(where, f"{len(got)} rows, AllenSDK has {len(exp)}")
        for i, (a, e) in enumerate(zip(got, exp, strict=True)):
            if e is None or _is_missing(a):
                ok = e is None and _is_missing(a)
            elif kind == "datetime":
                ok = pd.Timestamp(a) == pd.Timestamp(e)
            elif kind == "boolean":
                ok = isinstance(a, (bool, np.bool_)) and bool(a) == e
            else:
                ok = a == e
            if not ok:
                _fail(
                    where,
                    f"row {i} (label {labels[i]!r}): {a!r}, AllenSDK has "
                    f"{'missing' if e is None else repr(e)}",
                )
    elif "cells" in col:
        got = list(actual)
        if len(got) != len(col["cells"]):
            _fail(where, f"{len(got)} rows, AllenSDK has {len(col['cells'])}")
        for i, (a, e) in enumerate(zip(got, col["cells"], strict=True)):
            w = f"{where} row {i} (label {labels[i]!r})"
            if kind == "array":
                assert_array(a, e, w, rtol, atol, strict_dtype)
            else:
                assert_same(a, e, w, rtol, atol, strict_dtype)
    elif "range" not in col:
        _fail(where, "nothing to compare in the expectation")


def _with_row(msg: str, labels: list) -> str:
    """Name the row label after 'flat position N' in a 1-D column's message."""
    marker = "at flat position "
    if marker in msg:
        try:
            pos = int(msg.split(marker, 1)[1].split(":", 1)[0])
            return msg.replace(f"{marker}{pos}", f"at row {pos} (label {labels[pos]!r})", 1)
        except (ValueError, IndexError):
            return msg
    return msg


def _assert_kind(actual, col: dict, where: str, strict_dtype: bool) -> None:
    kind, nullable = kind_of(actual)
    if kind == "object" and col["kind"] == "text" and len(actual) == 0:
        kind = "text"  # an empty object column is text as far as values go
    if kind != col["kind"] or (kind == "integer" and nullable != col["nullable"]):
        _fail(
            where,
            f"kind {kind}{' (nullable)' if nullable and kind == 'integer' else ''} "
            f"(dtype {actual.dtype}), AllenSDK has {col['kind']}"
            f"{' (nullable)' if col['nullable'] and col['kind'] == 'integer' else ''}"
            f" (dtype {col['dtype']})",
        )
    if (
        strict_dtype
        and kind not in ("text", "array", "object")
        and str(actual.dtype) != col["dtype"]
    ):
        _fail(where, f"dtype {actual.dtype}, AllenSDK has {col['dtype']}")


def assert_frame(
    actual,
    expected: dict,
    where: str,
    rtol: float = RTOL,
    atol: float = ATOL,
    strict_dtype: bool = False,
) -> None:
    """``actual`` (a DataFrame) against an encoded DataFrame."""
    if not isinstance(actual, pd.DataFrame):
        _fail(where, f"expected a DataFrame, got {type(actual).__name__}")
    names = [c["name"] for c in expected["columns"]]
    got = list(actual.columns)
    if got != names:
        missing = [n for n in names if n not in got]
        extra = [n for n in got if n not in names]
        _fail(
            where,
            f"columns {got}, AllenSDK has {names}"
            + (f"; missing {missing}" if missing else "")
            + (f"; extra {extra}" if extra else "")
            + ("" if missing or extra else "; same names, different order"),
        )
    if actual.shape[0] != expected["shape"][0]:
        _fail(where, f"{actual.shape[0]} rows, AllenSDK has {expected['shape'][0]}")
    idx = expected["index"]
    if actual.index.name != idx["name"]:
        _fail(where, f"index name {actual.index.name!r}, AllenSDK has {idx['name']!r}")
    labels = _labels(actual.index)
    _assert_kind(actual.index, idx, f"{where}.index", strict_dtype)
    if "range" in idx:
        start, stop, step = idx["range"]
        want = np.arange(start, stop, step)
        got_idx = actual.index.to_numpy()
        if len(got_idx) != len(want) or not np.array_equal(got_idx, want):
            _fail(
                f"{where}.index",
                f"values {got_idx[:10].tolist()}..., AllenSDK has range({start}, {stop}, {step})",
            )
    else:
        _assert_values(
            actual.index, idx, f"{where}.index", rtol, atol, strict_dtype, list(range(len(actual)))
        )
    for i, col in enumerate(expected["columns"]):
        w = f"{where}[{col['name']!r}]"
        series = actual.iloc[:, i]
        _assert_kind(series, col, w, strict_dtype)
        _assert_values(series, col, w, rtol, atol, strict_dtype, labels)


# ---------------------------------------------------------------------------- values
def assert_same(
    actual,
    expected: dict,
    where: str,
    rtol: float = RTOL,
    atol: float = ATOL,
    strict_dtype: bool = False,
) -> None:
    """Raise AssertionError (naming ``where``, the column and row) unless ``actual``
    equals the encoded AllenSDK value ``expected``."""
    t = expected["type"]
    if t == "none":
        if actual is not None:
            _fail(where, f"{actual!r}, AllenSDK has None")
    elif t == "na":
        if actual is not pd.NA:
            _fail(where, f"{actual!r}, AllenSDK has pd.NA")
    elif t == "nat":
        if actual is not pd.NaT:
            _fail(where, f"{actual!r}, AllenSDK has NaT")
    elif t == "bool":
        if not isinstance(actual, (bool, np.bool_)) or bool(actual) != expected["value"]:
            _fail(where, f"{actual!r}, AllenSDK has bool {expected['value']!r}")
    elif t == "int":
        if (
            not isinstance(actual, (int, np.integer))
            or isinstance(actual, (bool, np.bool_))
            or int(actual) != expected["value"]
        ):
            _fail(
                where,
                f"{actual!r} ({type(actual).__name__}), AllenSDK has int {expected['value']!r}",
            )
    elif t == "float":
        if not isinstance(actual, (float, np.floating)) or not _close(
            float(actual), _f(expected["value"]), rtol, atol
        ):
            _fail(
                where,
                f"{actual!r} ({type(actual).__name__}), AllenSDK has float {expected['value']!r}",
            )
    elif t == "str":
        if not isinstance(actual, str) or actual != expected["value"]:
            _fail(where, f"{actual!r}, AllenSDK has {expected['value']!r}")
    elif t == "datetime":
        want = dt.datetime.fromisoformat(expected["iso"])
        if not isinstance(actual, dt.datetime):
            _fail(where, f"{actual!r}, AllenSDK has datetime {expected['iso']}")
        if (
            (actual.tzinfo is None) != (want.tzinfo is None)
            or actual != want
            or (want.tzinfo is not None and actual.utcoffset() != want.utcoffset())
        ):
            _fail(where, f"{actual.isoformat()}, AllenSDK has {expected['iso']}")
    elif t == "uuid":
        if not isinstance(actual, uuid.UUID) or str(actual) != expected["value"]:
            _fail(where, f"{actual!r}, AllenSDK has UUID('{expected['value']}')")
    elif t in ("list", "tuple"):
        if type(actual) is not (list if t == "list" else tuple) and not (
            t == "tuple" and isinstance(actual, tuple)
        ):
            _fail(where, f"a {type(actual).__name__}, AllenSDK has a {t}")
        if len(actual) != len(expected["items"]):
            _fail(where, f"{len(actual)} items, AllenSDK has {len(expected['items'])}")
        for i, (a, e) in enumerate(zip(actual, expected["items"], strict=True)):
            assert_same(a, e, f"{where}[{i}]", rtol, atol, strict_dtype)
    elif t == "dict":
        if not isinstance(actual, Mapping):
            _fail(where, f"a {type(actual).__name__}, AllenSDK has a dict")
        keys = [k for k, _ in expected["items"]]
        if list(actual.keys()) != keys:
            _fail(where, f"keys {list(actual.keys())}, AllenSDK has {keys}")
        for k, e in expected["items"]:
            assert_same(actual[k], e, f"{where}[{k!r}]", rtol, atol, strict_dtype)
    elif t == "Coordinates":
        want = [_f(v) for v in expected["xyz"]]
        try:
            got = [actual.x, actual.y, actual.z]
            iterated = list(actual)
        except (AttributeError, TypeError):
            _fail(where, f"{actual!r} lacks .x .y .z or iteration (AllenSDK: Coordinates)")
        for name, a, e in zip("xyz", got, want, strict=True):
            if not _close(float(a), e, rtol, atol):
                _fail(where, f".{name} {a!r}, AllenSDK has {e!r}")
        if [float(v) for v in iterated] != [float(v) for v in got]:
            _fail(where, f"iterates as {iterated}, not (x, y, z) = {got}")
    elif t == "Image":
        for attr in ("data", "spacing", "unit"):
            if not hasattr(actual, attr):
                _fail(where, f"{type(actual).__name__} has no .{attr} (AllenSDK: Image)")
        assert_array(actual.data, expected["data"], f"{where}.data", rtol, atol, strict_dtype)
        assert_same(
            actual.spacing, expected["spacing"], f"{where}.spacing", rtol, atol, strict_dtype
        )
        if actual.unit != expected["unit"]:
            _fail(f"{where}.unit", f"{actual.unit!r}, AllenSDK has {expected['unit']!r}")
    elif t == "ndarray":
        assert_array(actual, expected, where, rtol, atol, strict_dtype)
    elif t == "DataFrame":
        assert_frame(actual, expected, where, rtol, atol, strict_dtype)
    elif t == "object":
        if repr(actual) != expected["repr"]:
            _fail(where, f"{actual!r}, AllenSDK has {expected['repr']}")
    else:
        raise ValueError(f"{where}: unknown encoded type {t!r}")


# ---------------------------------------------------------------------------- attributes
def attribute_value(obj, name: str, entry: dict):
    """Get attribute ``name`` of ``obj`` the way the exporter got AllenSDK's."""
    how = entry["how"]
    if how == "property":
        return getattr(obj, name)
    if how == "call":
        return getattr(obj, name)()
    if how == "call(get_cell_specimen_ids())":
        return getattr(obj, name)(obj.get_cell_specimen_ids())
    raise ValueError(f"unknown way to get {name}: {how!r}")


def check_attribute(
    obj, name: str, entry: dict, where: str = "", *, allow_fixed: bool = False, **tolerances
) -> None:
    """One attribute against its ENTRY. When AllenSDK raised, ours must raise an
    exception of the same class name too, unless ``allow_fixed`` (a deliberate fix)."""
    where = where or name
    if "raises" in entry:
        exc = entry["raises"]
        try:
            value = attribute_value(obj, name, entry)
        except Exception as err:  # noqa: BLE001 - any class, compared by name below
            names = [c.__name__ for c in type(err).__mro__]
            if exc["exception"] not in names:
                _fail(
                    where,
                    f"raised {type(err).__name__}: {err}; AllenSDK raised "
                    f"{exc['exception']}: {exc['message']}",
                )
            return
        if not allow_fixed:
            _fail(
                where,
                f"returned {type(value).__name__}; AllenSDK raised "
                f"{exc['exception']}: {exc['message']}",
            )
        return
    assert_same(attribute_value(obj, name, entry), entry["value"], where, **tolerances)


def check_object(
    obj,
    doc: dict,
    label: str = "",
    *,
    skip: tuple[str, ...] = (),
    allow_fixed: tuple[str, ...] = (),
    **tolerances,
) -> None:
    """``list_data_attributes_and_methods()`` and every attribute; one AssertionError
    listing every failure."""
    label = label or doc["object"]
    failures = []
    want = [n for n in doc["list_data_attributes_and_methods"] if n not in doc["skipped"]]
    got = list(obj.list_data_attributes_and_methods())
    if got != want:
        failures.append(
            f"{label}.list_data_attributes_and_methods(): {got}, AllenSDK has "
            f"{want} (less {list(doc['skipped'])})"
        )
    for name, entry in doc["attributes"].items():
        if name in skip:
            continue
        try:
            check_attribute(
                obj, name, entry, f"{label}.{name}", allow_fixed=name in allow_fixed, **tolerances
            )
        except AssertionError as err:
            failures.append(str(err))
        except Exception as err:  # noqa: BLE001 - reported with the others
            failures.append(f"{label}.{name}: raised {type(err).__name__}: {err}")
    if failures:
        raise AssertionError(
            f"{len(failures)} difference(s) from AllenSDK:\n" + "\n".join(failures)
        )


# ---------------------------------------------------------------------------- decoding
def decode_array(e: dict) -> np.ndarray:
    dtype = np.dtype(e["dtype"])
    shape = tuple(e["shape"])
    if "true_flat" in e:
        a = np.zeros(int(np.prod(shape)), dtype=bool)
        a[e["true_flat"]] = True
        return a.reshape(shape)
    if "values" in e:
        vals = [_f(v) for v in e["values"]] if dtype.kind == "f" else e["values"]
        return np.array(vals, dtype=dtype).reshape(shape)
    if "items" in e:
        a = np.empty(len(e["items"]), dtype=object)
        a[:] = [decode(v) for v in e["items"]]
        return a.reshape(shape)
    raise ValueError("stored as a summary only: cannot be decoded")


def _decode_column(col: dict) -> list | np.ndarray | pd.api.extensions.ExtensionArray:
    kind = col["kind"]
    if "data" in col:
        return decode_array(col["data"])
    if kind == "boolean":
        return pd.array(col["values"], dtype="boolean")
    if kind == "integer":
        if col["dtype"] == "object":
            return np.array(col["values"], dtype=object)
        return pd.array(col["values"], dtype=col["dtype"])
    if kind == "text":
        missing = {"nan": np.nan, "none": None, "na": pd.NA}.get(
            (col.get("missing") or ["nan"])[0], np.nan
        )
        out = np.empty(len(col["values"]), dtype=object)
        out[:] = [missing if v is None else v for v in col["values"]]
        return out
    if kind == "datetime":
        return pd.to_datetime(col["values"])
    if kind == "array":
        out = np.empty(len(col["cells"]), dtype=object)
        out[:] = [decode_array(c) for c in col["cells"]]
        return out
    out = np.empty(len(col["cells"]), dtype=object)
    out[:] = [decode(c) for c in col["cells"]]
    return out


def decode(e: dict):
    """The Python value back from its encoding (ValueError for summarised arrays).
    Text columns come back as ``object`` dtype, as AllenSDK has them."""
    t = e["type"]
    simple = {"none": None, "na": pd.NA, "nat": pd.NaT}
    if t in simple:
        return simple[t]
    if t in ("bool", "int", "str"):
        return e["value"]
    if t == "float":
        return _f(e["value"])
    if t == "datetime":
        return dt.datetime.fromisoformat(e["iso"])
    if t == "uuid":
        return uuid.UUID(e["value"])
    if t == "list":
        return [decode(v) for v in e["items"]]
    if t == "tuple":
        return tuple(decode(v) for v in e["items"])
    if t == "dict":
        return {k: decode(v) for k, v in e["items"]}
    if t == "ndarray":
        return decode_array(e)
    if t == "DataFrame":
        idx = e["index"]
        if "range" in idx:
            index = pd.RangeIndex(*idx["range"], name=idx["name"])
        else:
            index = pd.Index(_decode_column(idx), name=idx["name"])
        data = {}
        for col in e["columns"]:
            data[col["name"]] = pd.Series(
                _decode_column(col), index=index, dtype=object if col["dtype"] == "object" else None
            )
        return pd.DataFrame(data, index=index, columns=[c["name"] for c in e["columns"]])
    raise ValueError(f"cannot decode type {t!r}")

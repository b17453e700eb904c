"""Metadata CSV bytes -> typed Arrow table, and the AllenSDK-shaped DataFrame view of it.

The release writes its tables with pandas: nullable integers as floats (``951410079.0``),
lists as Python literals (``"[951980471, 951980473]"``, ``"['Sst-IRES-Cre']"``), dates with
or without ``+00:00``, booleans as ``True``/``False``. ``pyarrow.csv`` parses numbers and
booleans and leaves the rest as text, which vectorised Arrow kernels then type: no Python
runs per row unless a value is malformed, and then only to name the line at fault.
Known columns get a declared type (`SCHEMAS`); a CSV may lack any of them but its index
column, and columns we do not know are kept and typed by inference.
"""

from __future__ import annotations

import ast
import csv
import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from ..base.errors import VboError
from .schema import BOOL, DATE, INDEX, INT, INTS, SCHEMAS, TEXTS

__all__ = ["read_table"]

# pandas 1.5's default NA strings (AllenSDK 2.16 pins pandas 1.5.3) and its booleans.
NULLS = [
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"),
]
TRUE = ["True", "TRUE", "true"]
FALSE = ["False", "FALSE", "false"]

_INT_RE = r"^[+-]?\d+(?:\.0*)?$"
# Lists exactly as Python's repr writes them take the vectorised path.
_INTS_RE = r"^\[(?:-?\d+(?:, -?\d+)*)?\]$"
# Quoted items without quotes, commas or escapes inside; anything else goes the slow way.
_ITEM = r"""(?:'[^'",\\]*'|"[^'",\\]*")"""
_TEXTS_RE = rf"^\[(?:{_ITEM}(?:, {_ITEM})*)?\]$"
_OFFSET_RE = r"(?:Z|[+-]\d\d:?\d\d)$"


class _Bad(Exception):
    """A value that does not parse: the row (0-based data row) and what is wrong."""

    def __init__(self, row: int | None, problem: str):
        self.row, self.problem = row, problem


def read_table(table: str, data: bytes, where: str) -> pa.Table:
    """Type one metadata CSV as an Arrow table.

    Parameters
    ----------
    table : str
        Our table name, a value of `CSV_TABLES` (e.g. ``"ophys_experiments"``).
    data : bytes
        The CSV file's bytes.
    where : str
        Names the source in error messages, e.g.
        ``"ophys_experiment_table.csv (manifest 1.1.0)"``.

    Returns
    -------
    pyarrow.Table
        The CSV's columns in the CSV's order: known columns in their declared type
        (see `SCHEMAS`), unknown ones typed by inference.

    Raises
    ------
    VboError
        Not UTF-8, unparseable or ragged CSV, an empty file, a missing, null or
        duplicate index, or a value that does not parse as its column's type.
    """
    declared, index = SCHEMAS[table], INDEX[table]
    data = data.removeprefix(b"\xef\xbb\xbf")
    names = _header(data, where)
    if index not in names:
        raise VboError(f"{where}: no {index} column (columns: {', '.join(names)})")
    raw = _read_fast(data, names, declared) or _read_text(data, names, where)
    columns = []
    for name, column in zip(names, raw.columns, strict=True):
        try:
            if name in declared.names:
                columns.append(_convert(column, declared.field(name).type))
            else:
                columns.append(_infer(column))
        except _Bad as bad:
            raise VboError(_message(where, data, bad.row, name, bad.problem)) from None
    typed = pa.table(columns, names=names)
    _check_index(typed, index, data, where)
    return typed


def _header(data: bytes, where: str) -> list[str]:
    """The column names; blank names become pandas' ``Unnamed: i``."""
    if not data.strip():
        raise VboError(f"{where}: empty file")
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        names = next(csv.reader([line.decode("utf-8")]))
    except UnicodeDecodeError:
        raise VboError(f"{where}: line 1: not UTF-8 text") from None
    except csv.Error as exc:
        raise VboError(f"{where}: line 1: unparseable CSV header ({exc})") from None
    names = [n if n.strip() else f"Unnamed: {i}" for i, n in enumerate(names)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise VboError(f"{where}: line 1: duplicate column {twice[0]!r}")
    return names


def _read_fast(data: bytes, names: list[str], declared: pa.Schema) -> pa.Table | None:
    """Let Arrow's CSV reader type integers (as floats: "4.0") and booleans itself.

    None when that fails or when a float cannot hold an integer exactly; the caller
    then reads text, which finds the row at fault or keeps the digits.
    """
    types = {n: pa.string() for n in names}
    for name in set(names) & set(declared.names):
        kind = declared.field(name).type
        types[name] = pa.float64() if kind == INT else BOOL if kind == BOOL else pa.string()
    try:
        raw = _read_csv(data, names, types, newlines_in_values=False)
    except pa.ArrowInvalid:
        return None
    for column in raw.columns:
        if column.type == pa.float64() and column.null_count < len(column):
            low, high = pc.min_max(column).values()
            if max(-low.as_py(), high.as_py()) >= 2**53:
                return None
    return raw


def _read_text(data: bytes, names: list[str], where: str) -> pa.Table:
    """Every column as Arrow strings, nulls where pandas would see NaN."""
    try:
        return _read_csv(data, names, dict.fromkeys(names, pa.string()), newlines_in_values=True)
    except pa.ArrowInvalid as exc:
        raise VboError(_diagnose(data, len(names), where, exc)) from None


def _read_csv(data: bytes, names: list[str], types: dict, newlines_in_values: bool) -> pa.Table:
    return pv.read_csv(
        io.BytesIO(data),
        read_options=pv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pv.ParseOptions(newlines_in_values=newlines_in_values),
        convert_options=pv.ConvertOptions(
            column_types=types,
            null_values=NULLS,
            true_values=TRUE,
            false_values=FALSE,
            strings_can_be_null=True,
        ),
    )


def _diagnose(data: bytes, width: int, where: str, exc: Exception) -> str:
    """Say where Arrow's parse failed: bad UTF-8, a ragged row, or Arrow's own words."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        return f"{where}: line {line}: not UTF-8 text"
    try:
        for line, row in _rows(text):
            if len(row) != width:
                return f"{where}: line {line}: {len(row)} fields where the header has {width}"
    except csv.Error as bad:
        return f"{where}: unparseable CSV ({bad})"
    return f"{where}: unparseable CSV ({str(exc).splitlines()[0]})"


def _rows(text: str):
    """(first line number, fields) of each non-blank CSV row after the header."""
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    start = reader.line_num + 1
    for row in reader:
        if row:
            yield start, row
        start = reader.line_num + 1


def _message(where: str, data: bytes, row: int | None, column: str, problem: str) -> str:
    if row is None:
        return f"{where}: column {column!r}: {problem}"
    return f"{where}: line {_line(data, row)}, column {column!r}: {problem}"


def _line(data: bytes, row: int) -> int:
    """The CSV line number of a 0-based data row (only computed for error messages)."""
    for i, (line, _) in enumerate(_rows(data.decode("utf-8"))):
        if i == row:
            return line
    return row + 2


def _convert(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """A column read as text (or as floats or booleans) to its declared type.

    Raises _Bad naming the first value that will not go.
    """
    if kind == INT:
        return _floats_to_int(column) if column.type == pa.float64() else _to_int(column)
    if kind == BOOL:
        return column if column.type == BOOL else _to_bool(column)
    if kind == DATE:
        return _to_date(column)
    if kind in (INTS, TEXTS):
        return _to_list(column, kind)
    return column


def _floats_to_int(floats):
    try:
        return pc.cast(floats, INT)  # a safe cast: refuses 1.5, inf
    except pa.ArrowInvalid:
        bad = pc.invert(pc.equal(pc.floor(floats), floats))
        row = _first(pc.or_(bad, pc.invert(pc.is_finite(floats))))
        raise _Bad(row, f"{floats[row].as_py()!r} is not an integer") from None


def _infer(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """A type for a column we do not know, as pandas would see it but stricter."""
    valid = len(column) - column.null_count
    if valid == 0:
        return pc.cast(column, pa.float64())
    if _count(pc.match_substring_regex(column, _INT_RE)) == valid:
        try:
            return _to_int(column)
        except _Bad:  # beyond 64 bits: keep the digits as text
            return column
    for kind, pattern in ((INTS, _INTS_RE), (TEXTS, _TEXTS_RE)):
        if _count(pc.match_substring_regex(column, pattern)) == valid:
            return _to_list(column, kind)
    if _count(pc.is_in(column, pa.array(TRUE + FALSE))) == valid:
        return _to_bool(column)
    try:
        first = column.drop_null()[0].as_py()
        return pc.cast(column, pa.float64()) if _is_float(first) else column
    except pa.ArrowInvalid:
        return column


def _count(mask) -> int:
    return pc.sum(mask).as_py() or 0


def _first(bad) -> int:
    """The first row where a boolean mask is true."""
    return pc.index(bad, True).as_py()


def _reject(column, ok, problem: str):
    """Raise _Bad for the first non-null value where ``ok`` is false."""
    bad = pc.and_kleene(pc.is_valid(column), pc.invert(pc.fill_null(ok, False)))
    if pc.any(bad).as_py():
        row = _first(bad)
        raise _Bad(row, f"{_show(column[row].as_py())} {problem}")


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _to_int(column):
    """Integers from text, also written as integral floats (``4.0``); nulls stay null."""
    _reject(column, pc.match_substring_regex(column, _INT_RE), "is not an integer")
    try:
        return pc.cast(pc.replace_substring_regex(column, r"\.0*$", ""), INT)
    except pa.ArrowInvalid:
        raise _Bad(None, "an integer out of the 64-bit range") from None


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _reject_python(column, ok, problem: str) -> None:
    """Raise _Bad for the first non-null value ``ok`` refuses (error paths only)."""
    for row, value in enumerate(column.to_pylist()):
        if value is not None and not ok(value):
            raise _Bad(row, f"{_show(value)} {problem}")


def _to_bool(column):
    _reject(column, pc.is_in(column, pa.array(TRUE + FALSE)), "is not True or False")
    return pc.if_else(pc.is_valid(column), pc.is_in(column, pa.array(TRUE)), None)


def _to_date(column):
    """ISO 8601 dates; naive ones are UTC, like pandas' ``to_datetime(utc=True)``."""
    # Arrow keeps microseconds: drop any further digits rather than fail.
    column = pc.replace_substring_regex(column, r"(\.\d{6})\d+", r"\1")
    aware = pc.match_substring_regex(column, _OFFSET_RE)
    none = pa.scalar(None, pa.string())
    try:
        naive = pc.cast(pc.if_else(aware, none, column), pa.timestamp("us"))
        zoned = pc.cast(pc.if_else(aware, column, none), DATE)
    except pa.ArrowInvalid:
        _reject_python(column, _is_date, "is not an ISO 8601 date")
        raise
    return pc.coalesce(zoned, pc.cast(naive, DATE))


def _is_date(value: str) -> bool:
    zoned = pc.match_substring_regex(pa.array([value]), _OFFSET_RE)[0].as_py()
    try:
        pc.cast(pa.array([value]), DATE if zoned else pa.timestamp("us"))
    except pa.ArrowInvalid:
        return False
    return True


def _to_list(column, kind: pa.DataType):
    """Python list literals, vectorised when every value is a list as pandas writes it."""
    pattern = _INTS_RE if kind == INTS else _TEXTS_RE
    plain = pc.fill_null(pc.match_substring_regex(column, pattern), True)
    if not pc.all(plain).as_py():
        return _to_list_slowly(column, kind)
    column = column.combine_chunks()
    parts = pc.split_pattern(pc.utf8_slice_codeunits(column, 1, -1), ", ")
    items = pc.list_flatten(parts)
    # "[]" splits into one empty item, and no item of another list is empty.
    lengths = pc.list_value_length(parts)
    lengths = pc.fill_null(pc.if_else(pc.equal(column, "[]"), 0, lengths), 0)
    items = items.filter(pc.not_equal(items, ""))
    items = pc.cast(items, INT) if kind == INTS else pc.utf8_slice_codeunits(items, 1, -1)
    offsets = pc.cumulative_sum(lengths.cast(pa.int32()))
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), offsets])
    return pa.ListArray.from_arrays(offsets, items, type=kind, mask=pc.is_null(column))


def _to_list_slowly(column, kind: pa.DataType):
    """ast.literal_eval, as AllenSDK does, for lists the fast path does not take.

    A bare scalar becomes a one-item list so the column keeps one type in every version.
    """
    item = int if kind == INTS else str
    values = []
    for row, text in enumerate(column.to_pylist()):
        if text is None:
            values.append(None)
            continue
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise _Bad(row, f"{_show(text)} is not a list literal") from None
        value = list(value) if isinstance(value, list | tuple) else [value]
        if not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise _Bad(row, f"{_show(text)} is not a list of {item.__name__}")
        values.append(value)
    return pa.array(values, kind)


def _check_index(typed: pa.Table, index: str, data: bytes, where: str) -> None:
    """The index column has a value in every row, and each value once."""
    column = typed.column(index).combine_chunks()
    if column.null_count:
        row = _first(pc.is_null(column))
        raise VboError(_message(where, data, row, index, "empty index value"))
    order = pc.sort_indices(column)
    ranked = column.take(order)
    same = pc.equal(ranked[1:], ranked[:-1])
    if len(same) and pc.any(same).as_py():
        at = _first(same)
        first, second = sorted(order[at : at + 2].to_pylist())
        value = column[first].as_py()
        problem = f"duplicate {index} {value} (also on line {_line(data, first)})"
        raise VboError(_message(where, data, second, index, problem))

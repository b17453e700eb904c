"""The stimulus presentations table, as AllenSDK 2.16.2 builds it, vectorised.

Every ``intervals/*_presentations`` table is read column by column with h5py and the
tables concatenated with pandas (so missing columns take pandas' concat dtypes, as in
AllenSDK). ``is_change`` and ``flashes_since_change`` are recomputed without a row loop;
``active``, ``trials_id`` and ``is_sham_change`` are computed only when the file lacks them
(released VBO files have them, so the trials are then not read at all).

One deliberate difference: columns after AllenSDK's fixed leading ones come in sorted
order, where AllenSDK uses Python ``set`` order (which changes with ``PYTHONHASHSEED``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .behavior import table_columns
from .conventions import INT_NULL, LEADING_COLUMNS
from .file import NWBReader

INT_COLUMNS = (
    "flashes_since_change",
    "image_index",
    "movie_repeat",
    "movie_frame_index",
    "repeat",
    "stimulus_index",
)
SKIPPED = ("tags", "timeseries", "tags_index", "timeseries_index")


def presentation_tables(reader: NWBReader) -> list[str]:
    """The paths of the ``intervals/*_presentations`` tables, in file (name) order."""
    return [p for p in reader.walk("intervals") if p.endswith("_presentations")]


def _read_table(reader: NWBReader, path: str):
    import pandas as pd

    _, columns = table_columns(reader, path, skip=SKIPPED)
    for name, values in columns.items():
        if values.dtype == object and values.size and isinstance(values[0], str):
            columns[name] = np.where(values == "N/A", "", values)  # the writer's missing text
    return pd.DataFrame(columns)


def _booleans_as_boolean(table):
    """Float columns holding only 0, 1 and NaN become "boolean" (how the writer stored them)."""
    for name in table.select_dtypes(include="float").columns:
        values = table[name].to_numpy()
        present = values[~np.isnan(values)]
        if not name.endswith("_index") and np.isin(present, (0.0, 1.0)).all():
            table[name] = table[name].astype("boolean")
    return table


def change_events(image_name, omitted) -> np.ndarray:
    """AllenSDK's ``is_change_event``: the first flash of a new image, omitted flashes skipped.

    Rows whose ``omitted`` is True or NA are excluded; the first kept row is not a change.
    """
    keep = np.ones(len(image_name), dtype=bool) if omitted is None else omitted.eq(False)
    keep = np.asarray(keep.fillna(False) if hasattr(keep, "fillna") else keep, dtype=bool)
    shown = image_name[keep]
    change = np.array(shown != shown.shift(), dtype=bool)
    if change.size:
        change[0] = False
    out = np.zeros(len(image_name), dtype=bool)
    out[np.flatnonzero(keep)] = change
    return out


def flashes_since_change(is_change: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """Flashes since the last change; omitted flashes (``carried``) repeat the previous count.

    The vectorised form of AllenSDK's ``get_flashes_since_change`` loop: a counter that
    resets to 0 on a change (or on row 0) and stands still on omitted rows.
    """
    rows = np.arange(len(is_change))
    reset = ~carried & (is_change | (rows == 0))
    counted = np.cumsum(~carried & ~reset)
    last_reset = np.maximum.accumulate(np.where(reset, rows, -1)) if rows.size else rows
    base = np.where(last_reset >= 0, counted[np.maximum(last_reset, 0)], 0)
    return (counted - base).astype(np.int64)


def _omitted_rows(table) -> np.ndarray:
    carried = np.zeros(len(table), dtype=bool)
    if "omitted" in table:
        carried |= table["omitted"].fillna(False).to_numpy(dtype=bool)
    if "image_name" in table:
        carried |= table["image_name"].eq("omitted").fillna(False).to_numpy(dtype=bool)
    return carried


def _image_blocks(table, active: np.ndarray):
    """Pairs (active block, passive block) that showed the same images in the same order."""
    blocks, names = table["stimulus_block"], table["image_name"]
    passive = blocks[~active & names.notna().to_numpy()].unique()
    pairs = []
    for act in blocks[active].unique():
        shown = names[blocks == act].to_numpy()
        for pas in passive:
            other = names[blocks == pas].to_numpy()
            if len(shown) == len(other) and bool((shown == other).all()):
                pairs.append((blocks == act, blocks == pas))
    return pairs


def add_active(table, trials) -> None:
    """AllenSDK's ``add_active_flag``: image flashes inside the trials, extended to whole blocks."""
    start = table["start_time"].to_numpy()
    active = (
        (start > trials["start_time"].min())
        & (start < trials["stop_time"].max())
        & table["image_name"].notna().to_numpy()
    )
    if "stimulus_block" in table:
        blocks = table["stimulus_block"].to_numpy()
        active |= np.isin(blocks, blocks[active])
    table["active"] = active


def add_trials_id(table, trials) -> None:
    """AllenSDK's ``compute_trials_id_for_stimulus``: the last trial started before the flash.

    Of the trials (in table order) that started before a flash, AllenSDK's loop keeps the
    last; with ``suffix_min`` the minimum start from each trial on, that is the last trial
    whose suffix minimum lies before the flash (a sorted search, no loop).
    """
    start = table["start_time"].to_numpy()
    starts = trials["start_time"].to_numpy(dtype=float)
    suffix_min = np.minimum.accumulate(starts[::-1])[::-1]
    last = np.searchsorted(suffix_min, start, side="left") - 1
    ids = np.full(len(table), INT_NULL, dtype=np.int64)
    valid = (last >= 0) & (start < trials["stop_time"].max())
    valid &= table["image_name"].notna().to_numpy()
    ids[valid] = trials.index.to_numpy()[last[valid]]
    if "stimulus_block" in table and "active" in table:
        for act, pas in _image_blocks(table, table["active"].to_numpy(dtype=bool)):
            ids[pas.to_numpy()] = ids[act.to_numpy()]
    table["trials_id"] = ids


def add_is_sham_change(table, trials) -> None:
    """AllenSDK's ``compute_is_sham_change``: flashes on a catch trial's change frame."""
    if not {"trials_id", "active", "stimulus_block"} <= set(table.columns):
        return
    linked = trials.loc[trials.index.isin(table["trials_id"].unique())]
    catch_frames = linked.loc[linked["catch"].fillna(False).astype(bool), "change_frame"]
    sham = table["start_frame"].isin(catch_frames.unique()).to_numpy()
    for act, pas in _image_blocks(table, table["active"].to_numpy(dtype=bool)):
        sham[pas.to_numpy()] = sham[act.to_numpy()]
    table["is_sham_change"] = sham


def _fill_ints(table) -> None:
    for name in INT_COLUMNS:
        if name in table:
            values = table[name].to_numpy(dtype=float, na_value=np.nan)
            table[name] = np.where(np.isnan(values), INT_NULL, values).astype(np.int64)


def read_presentations(reader: NWBReader, trials: Callable[[], object]):
    """The ``stimulus_presentations`` table indexed by ``stimulus_presentations_id``.

    Parameters
    ----------
    reader : NWBReader
        The open file.
    trials : callable
        Returns the trials table; called only when ``active``, ``trials_id`` or
        ``is_sham_change`` must be computed.
    """
    import pandas as pd

    paths = presentation_tables(reader)
    if not paths:
        index = pd.RangeIndex(0, name="stimulus_presentations_id")
        return pd.DataFrame(index=index)
    table = pd.concat([_read_table(reader, p) for p in paths], sort=False)
    ints = table.select_dtypes(include="integer").columns
    table = _booleans_as_boolean(table.astype(dict.fromkeys(ints, "int64")))
    table = table.sort_values("start_time", kind="stable").reset_index(drop=True)
    if "image_name" in table:
        is_change = change_events(table["image_name"], table.get("omitted"))
    else:
        is_change = np.zeros(len(table), dtype=bool)
    table["is_change"] = is_change
    table["flashes_since_change"] = flashes_since_change(is_change, _omitted_rows(table))
    _fill_ints(table)
    missing = [c for c in ("active", "trials_id", "is_sham_change") if c not in table]
    if missing and "image_name" in table:
        trial_table = trials()
        if "active" in missing:
            add_active(table, trial_table)
        if "trials_id" in missing:
            add_trials_id(table, trial_table)
        if "is_sham_change" in missing:
            add_is_sham_change(table, trial_table)
    table = table.drop(columns=["image_set", "index"], errors="ignore")
    table = table.rename(columns={"stop_time": "end_time"})
    leading = [c for c in LEADING_COLUMNS if c in table]
    table = table[leading + sorted(c for c in table.columns if c not in leading)]
    table.index = pd.RangeIndex(len(table), name="stimulus_presentations_id")
    return table

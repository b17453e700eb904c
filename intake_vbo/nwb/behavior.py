"""The simple behavior tables and dicts, read with h5py as AllenSDK 2.16.2 presents them.

Each ``read_*`` takes an open `NWBReader` and reads only its own datasets. Also here:
`table_columns`, which reads an NWB DynamicTable (``intervals/*``) column by column.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np

from .conventions import INT_NULL
from .file import NWBReader

# AllenSDK's empty frames (no licks, no rewards) are pd.DataFrame({c: []}): float64 columns
# in the pandas 1.5 it runs on (measured on AllenSDK 2.16.2: float64, not object)
LICK_COLUMNS = ("timestamps", "frame")
REWARD_COLUMNS = ("volume", "timestamps", "auto_rewarded")
TASK_LIST_FIELDS = ("blank_duration_sec", "response_window_sec")


def _empty_frame(columns):
    import pandas as pd

    return pd.DataFrame({c: np.empty(0) for c in columns})


def _ragged(data: np.ndarray, index: np.ndarray) -> np.ndarray:
    """An object array holding one slice of ``data`` per row (VectorIndex ends in ``index``).

    Row ``i`` holds ``data[index[i-1]:index[i]]``. A column with no values at all is stored
    by AllenSDK's writer as a placeholder, one empty string with an all-zero index: its
    rows are then empty float arrays, as a column of numbers with no values would be.
    """
    bounds = np.asarray(index, dtype=np.int64)
    if not len(bounds):
        return np.empty(0, dtype=object)
    if bounds[-1] == 0 and data.dtype.kind in "OSU":
        data = np.empty(0, dtype=np.float64)
    parts = np.split(data[: bounds[-1]], bounds[:-1])
    return np.fromiter(parts, dtype=object, count=len(parts))


def table_columns(
    reader: NWBReader, path: str, skip: tuple[str, ...] = ()
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ids and columns of the DynamicTable at ``path``, in its ``colnames`` order.

    Text comes back as object arrays of str; a ragged column (with ``<name>_index``) as an
    object array of arrays; compound columns (``timeseries``) are left out.

    Parameters
    ----------
    reader : NWBReader
        The open file.
    path : str
        The table's group, e.g. ``intervals/trials``.
    skip : tuple of str
        Column names not to read.

    Returns
    -------
    tuple
        ``(ids, {column: values})``.
    """
    colnames = reader.attrs(path).get("colnames", [])
    ids = reader.read(f"{path}/id")
    columns: dict[str, np.ndarray] = {}
    for name in (str(c) for c in np.atleast_1d(colnames)):
        if name in skip or not reader.has(f"{path}/{name}"):
            continue
        values = reader.read_text(f"{path}/{name}")
        if isinstance(values, np.ndarray) and values.dtype.names:
            continue  # TimeSeriesReferenceVectorData: references, not values
        index = f"{path}/{name}_index"
        columns[name] = _ragged(values, reader.read(index)) if reader.has(index) else values
    return ids, columns


def read_behavior_session_id(reader: NWBReader) -> int:
    """``/general/metadata`` attribute ``behavior_session_id``."""
    return int(reader.attrs("general/metadata")["behavior_session_id"])


def read_running_speed(reader: NWBReader, filtered: bool = True):
    """``timestamps``, ``speed``: the (un)filtered speed, negated when its mean is < -1 cm/s.

    AllenSDK's ``_fix_polarity``: some sessions were recorded with the wheel reversed.
    """
    import pandas as pd

    path = "processing/running/" + ("speed" if filtered else "speed_unfiltered")
    if not reader.has(path):
        return pd.DataFrame({"timestamps": np.empty(0), "speed": np.empty(0)})
    speed = reader.read(f"{path}/data")
    with np.errstate(invalid="ignore"):
        if speed.size and np.nanmean(speed) < -1:
            speed = -speed
    return pd.DataFrame({"timestamps": reader.read(f"{path}/timestamps"), "speed": speed})


def read_licks(reader: NWBReader):
    """``timestamps``, ``frame`` of every lick; an empty (float64) frame without any."""
    import pandas as pd

    path = "processing/licking/licks"
    if not reader.has(path):
        return _empty_frame(LICK_COLUMNS)
    return pd.DataFrame(
        {"timestamps": reader.read(f"{path}/timestamps"), "frame": reader.read(f"{path}/data")}
    )


def read_rewards(reader: NWBReader):
    """``volume``, ``timestamps``, ``auto_rewarded``; an empty frame without rewards."""
    import pandas as pd

    path = "processing/rewards"
    if not reader.has(f"{path}/autorewarded"):
        return _empty_frame(REWARD_COLUMNS)
    return pd.DataFrame(
        {
            "volume": reader.read(f"{path}/volume/data"),
            "timestamps": reader.read(f"{path}/autorewarded/timestamps"),
            "auto_rewarded": reader.read(f"{path}/autorewarded/data"),
        }
    )


def read_trials(reader: NWBReader):
    """The trials table as AllenSDK's ``Trials.from_nwb`` leaves it.

    ``lick_events`` dropped, ``stimulus_change`` renamed ``is_change``, ``change_frame``
    NaN filled with -99 as int, index ``trials_id``; columns keep the file's order.
    """
    import pandas as pd

    ids, columns = table_columns(reader, "intervals/trials", skip=("lick_events",))
    frame = pd.DataFrame(columns, index=pd.Index(ids, name="trials_id"))
    frame = frame.rename(columns={"stimulus_change": "is_change"})
    if "change_frame" in frame:
        frame["change_frame"] = frame["change_frame"].fillna(INT_NULL).astype(np.int64)
    return frame


def parse_image_set(session_type: str) -> str | None:
    """``images_G`` from ``OPHYS_1_images_G``, ``gratings`` from ``X_N_gratings...``; else None.

    AllenSDK's ``parse_stimulus_set`` raises on other names; a view should still open.
    """
    parts = str(session_type).split("_")
    if len(parts) > 3 and parts[2] == "images":
        return f"images_{parts[3]}"
    if len(parts) > 2 and parts[2] == "gratings":
        return "gratings"
    return None


def read_task_parameters(reader: NWBReader) -> dict[str, Any]:
    """The dict of ``BehaviorTaskParametersSchema().dump(...)``, keys in AllenSDK's order.

    List fields are stored as text and come back as floats; ``image_set`` is derived from
    ``session_type``.
    """
    stored = reader.attrs("general/task_parameters")
    values: dict[str, Any] = {}
    for key in ("auto_reward_volume", "omitted_flash_fraction", "reward_volume"):
        values[key] = _float_or_none(stored.get(key))
    for key in TASK_LIST_FIELDS:
        values[key] = [float(v) for v in np.atleast_1d(stored.get(key, []))]
    values["n_stimulus_frames"] = _int_or_none(stored.get("n_stimulus_frames"))
    values["stimulus_duration_sec"] = _float_or_none(stored.get("stimulus_duration_sec"))
    for key in ("session_type", "stimulus", "stimulus_distribution", "stimulus_name", "task"):
        values[key] = None if stored.get(key) is None else str(stored[key])
    values["image_set"] = parse_image_set(values["session_type"] or "")
    order = (
        "auto_reward_volume",
        "blank_duration_sec",
        "image_set",
        "n_stimulus_frames",
        "omitted_flash_fraction",
        "response_window_sec",
        "reward_volume",
        "session_type",
        "stimulus",
        "stimulus_distribution",
        "stimulus_duration_sec",
        "stimulus_name",
        "task",
    )
    return {key: values[key] for key in order}


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)


def parse_age_in_days(age: str | None) -> int | None:
    """Days from an ISO 8601 age code such as ``P213D`` (AllenSDK: first digits after P)."""
    if not age or not age.startswith("P"):
        return None
    match = re.search(r"\d+", age)
    return int(match.group()) if match else None


def parse_cre_line(full_genotype: str | None) -> str | None:
    """The Cre line: the genotype's first part without ``/wt``; None without a ``;``."""
    if not full_genotype or ";" not in full_genotype:
        return None
    return full_genotype.split(";")[0].replace("/wt", "")


def _text_or_none(reader: NWBReader, path: str) -> str | None:
    return reader.read_text(path) if reader.has(path) else None


def read_date_of_acquisition(reader: NWBReader):
    """``session_start_time`` as a UTC ``pandas.Timestamp`` (AllenSDK gives tzlocal)."""
    import pandas as pd

    stamp = pd.Timestamp(reader.read_text("session_start_time"))
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def read_behavior_metadata(reader: NWBReader) -> dict[str, Any]:
    """The BehaviorSession metadata dict, in AllenSDK's key order."""
    meta = reader.attrs("general/metadata")
    subject = reader.attrs("general/subject")
    genotype = _text_or_none(reader, "general/subject/genotype")
    reporter = subject.get("reporter_line")
    session_uuid = meta.get("behavior_session_uuid")
    drivers = subject.get("driver_line")
    frame_rate = meta.get("stimulus_frame_rate")
    return {
        "equipment_name": meta.get("equipment_name"),
        "sex": _text_or_none(reader, "general/subject/sex"),
        "age_in_days": parse_age_in_days(_text_or_none(reader, "general/subject/age")),
        "stimulus_frame_rate": None if frame_rate is None else float(frame_rate),
        "session_type": meta.get("session_type"),
        "date_of_acquisition": read_date_of_acquisition(reader),
        "reporter_line": None if reporter in (None, "None") else str(reporter),
        "cre_line": parse_cre_line(genotype),
        "behavior_session_uuid": (
            None if session_uuid in (None, "None") else uuid.UUID(str(session_uuid))
        ),
        "driver_line": None if drivers is None else sorted(str(d) for d in np.atleast_1d(drivers)),
        "mouse_id": _text_or_none(reader, "general/subject/subject_id"),
        "project_code": meta.get("project_code", "Not Available"),
        "full_genotype": genotype,
        "behavior_session_id": int(meta["behavior_session_id"]),
    }


def read_stimulus_templates(reader: NWBReader):
    """The image template as a DataFrame (``unwarped``, ``warped`` by ``image_name``), or None.

    AllenSDK's rule: the one template whose name lacks "movie"; more than one is an error.
    """
    import pandas as pd

    from ..base.errors import VboError

    names = [n for n in reader.keys("stimulus/templates") if "movie" not in n.lower()]
    if not names:
        return None
    if len(names) > 1:
        raise VboError(f"{reader.name}: several image stimulus templates {names}; expected one")
    path = f"stimulus/templates/{names[0]}"
    image_names = reader.read_text(f"{path}/control_description")
    warped, unwarped = reader.read(f"{path}/data"), reader.read(f"{path}/unwarped")
    frame = pd.DataFrame(
        {"unwarped": _rows(unwarped), "warped": _rows(warped)},
        index=pd.Index(np.asarray(image_names, dtype=str), name="image_name"),
    )
    return frame


def _rows(stack: np.ndarray) -> np.ndarray:
    """An object array holding each 2-D image of a 3-D stack (views, no copies)."""
    return np.fromiter(iter(stack), dtype=object, count=len(stack))

"""Build a sample NWB file with pynwb, in the layout AllenSDK's writers give the release.

:func:`build` turns a file's values (``values.file_values``) and identity into an
``NWBFile`` with the groups, extension types, column orders and dtypes of the released
files. It is slow (pynwb builds every object), so the
sample writes it once per template shape and personalises copies (``nwbwrite``).
"""

from __future__ import annotations

import numpy as np

from ..nwb.conventions import INT_NULL, LEADING_COLUMNS
from . import session as S
from .extensions import (
    BEHAVIOR_OPHYS,
    EYE_TRACKING,
    RIG_FIELDS,
    STIMULUS_TEMPLATE,
    get_class,
)
from .fileinfo import metadata_attributes, task_attributes
from .nwbcolumns import column, packed
from .values import PRESENTATIONS, TRIALS, is_passive

_TRIAL_COLUMNS = [
    "initial_image_name",
    "change_image_name",
    "is_change",
    "change_time",
    "go",
    "catch",
    "lick_times",
    "response_time",
    "response_latency",
    "reward_time",
    "reward_volume",
    "hit",
    "false_alarm",
    "miss",
    "correct_reject",
    "aborted",
    "auto_rewarded",
    "change_frame",
    "trial_length",
]
# A presentation block's columns as AllenSDK's writer stores them: the leading columns
# (start and stop times come first, from TimeIntervals), then the rest the objects sort.
_BLOCK_COLUMNS = [
    *(c for c in LEADING_COLUMNS if c not in ("start_time", "end_time")),
    "stimulus_name",
    "is_sham_change",
    "active",
]
_IMAGE_ONLY = {"image_name", "is_change", "is_image_novel", "omitted"}


def build(info, values: dict, device: tuple[str, str]):
    """The ``NWBFile`` of ``info`` holding ``values`` (``device``: description, maker)."""
    from pynwb import NWBFile, ProcessingModule, TimeSeries

    ophys = info.kind == "ophys_experiment"
    nwb = NWBFile(
        session_description=info.session_type,
        identifier=str(info.ident),
        session_start_time=info.start,
        file_create_date=info.start,
        institution="Allen Institute for Brain Science",
        keywords=(
            ["2-photon", "calcium imaging", "visual cortex", "behavior", "task"]
            if ophys
            else ["visual", "behavior", "task"]
        ),
        experiment_description=experiment_description(info.session_type),
        trials=_trials(values),
    )
    nwb.create_device(name=info.equipment_name, description=device[0], manufacturer=device[1])
    modules = {}
    for name, description in (
        ("stimulus", "Stimulus Times processing"),
        ("running", "Running speed processing module"),
        ("licking", "Licking behavior processing module"),
        ("rewards", "Licking behavior processing module"),
        ("eye_tracking_rig_metadata", "Eye tracking rig metadata module"),
    ):
        if name in ("licking", "rewards") and is_passive(info.session_type):
            continue  # AllenSDK writes nothing when there are no licks or rewards
        modules[name] = ProcessingModule(name=name, description=description)
        nwb.add_processing_module(modules[name])
    shared = S.shared()
    clock = TimeSeries(
        name="timestamps", data=packed(shared["t"]), unit="s", timestamps=packed(shared["t"])
    )
    modules["stimulus"].add(clock)
    running = [
        ("speed", "speed", "cm/s", "no description"),
        ("speed_unfiltered", "raw", "cm/s", "no description"),
        ("dx", "dx", "cm", "Running wheel angular change, computed during data collection"),
    ]
    for name, key, unit, description in running:
        modules["running"].add(
            TimeSeries(
                name=name,
                data=packed(shared[key]),
                unit=unit,
                timestamps=clock,
                description=description,
            )
        )
    for name, description in (
        ("v_sig", "Voltage signal from the running wheel encoder"),
        (
            "v_in",
            "The theoretical maximum voltage that the running wheel encoder will reach "
            "prior to wrapping. This should theoretically be 5V (after crossing 5V goes to 0V, "
            "or vice versa). In practice the encoder does not always reach this value before "
            "wrapping, which can cause transient spikes in speed at the voltage wraps.",
        ),
    ):
        nwb.add_acquisition(
            TimeSeries(
                name=name,
                data=packed(shared[name]),
                unit="V",
                timestamps=clock,
                description=description,
            )
        )
    if "licking" in modules:
        modules["licking"].add(
            TimeSeries(
                name="licks",
                data=values["processing/licking/licks/data"],
                unit="N/A",
                timestamps=values["processing/licking/licks/timestamps"],
                description="Timestamps and stimulus presentation frame indices for lick events",
            )
        )
        for name in ("volume", "autorewarded"):
            path = f"processing/rewards/{name}/"
            modules["rewards"].add(
                TimeSeries(
                    name=name,
                    data=values[path + "data"],
                    unit="mL",
                    timestamps=values[path + "timestamps"],
                )
            )
    _stimuli(nwb, info, values, clock)
    _eye_tracking(nwb, modules["eye_tracking_rig_metadata"], info)
    _metadata(nwb, info)
    if ophys:
        from .nwbophys import add_ophys

        add_ophys(nwb, info, values)
    return nwb


def experiment_description(session_type: str) -> str:
    """The experiment description AllenSDK derives from the session type."""
    if session_type.startswith("OPHYS") and not session_type.startswith("OPHYS_0"):
        what = "2-photon calcium imaging in the visual cortex of the mouse brain as the mouse "
        if is_passive(session_type):
            return (
                what
                + "passively views a visual change detection task with the lick spout retracted."
            )
        return what + "performs a visual change detection task with a set of natural images."
    return (
        "Behavioral training of the mouse on a visual change detection task (" + session_type + ")."
    )


def _trials(values: dict):
    from hdmf.common import VectorIndex
    from pynwb.epoch import TimeIntervals

    columns = [column(c, values[TRIALS + c]) for c in ("start_time", "stop_time")]
    for name in _TRIAL_COLUMNS:
        columns.append(column(name, values[TRIALS + name], f"NOT IMPLEMENTED: {name}"))
        if name == "lick_times":
            columns.append(
                VectorIndex(
                    name="lick_times_index",
                    target=columns[-1],
                    data=values[TRIALS + "lick_times_index"],
                )
            )
    return TimeIntervals(name="trials", description="experimental trials", columns=columns)


def _intervals(name: str, rows: dict, clock):
    """One ``<stimulus_name>_presentations`` table in AllenSDK's column order."""
    from hdmf.common import VectorIndex
    from pynwb.base import TimeSeriesReference, TimeSeriesReferenceVectorData
    from pynwb.epoch import TimeIntervals

    n = len(rows["start_time"])
    columns = [
        column(c, rows[c]) for c in ("start_time", "stop_time", *_BLOCK_COLUMNS) if c in rows
    ]
    tags = column("tags", np.array(["stimulus_time_interval"] * n, object), "user-defined tags")
    refs = [
        TimeSeriesReference(int(a), int(b - a), clock)
        for a, b in zip(rows["start_frame"], rows["end_frame"], strict=True)
    ]
    series = TimeSeriesReferenceVectorData(
        name="timeseries", data=refs, description="index into a TimeSeries object"
    )
    columns += [
        tags,
        VectorIndex(name="tags_index", target=tags, data=np.arange(1, n + 1, dtype=np.uint8)),
        series,
        VectorIndex(
            name="timeseries_index", target=series, data=np.arange(1, n + 1, dtype=np.uint8)
        ),
    ]
    description = (
        f"Presentation times and stimuli details for '{name}' stimuli. \n"
        "Note: image_name references control_description in stimulus/templates"
    )
    return TimeIntervals(name=f"{name}_presentations", description=description, columns=columns)


def _other_blocks(t: np.ndarray, passive: bool) -> tuple[dict, dict]:
    """The two gray screens and the movie block: the same in every file."""
    end = S.BLOCK1 + S.N_FLASHES * S.FLASH
    gray = {
        "start_frame": np.array([0, end]),
        "end_frame": np.array([S.GRAY, end + S.GRAY]),
        "stimulus_block": np.array([0, 2]),
        "stimulus_name": ["spontaneous"] * 2,
        "stimulus_block_name": ["initial_gray_screen_5min", "post_behavior_gray_screen_5min"],
    }
    start = end + S.GRAY + S.MOVIE_HOLD * np.arange(S.MOVIE_FRAMES * S.MOVIE_REPEATS)
    n = len(start)
    movie = {
        "start_frame": start,
        "end_frame": start + S.MOVIE_HOLD,
        "stimulus_block": np.full(n, 3),
        "stimulus_name": ["natural_movie_one"] * n,
        "stimulus_block_name": ["natural_movie_one"] * n,
        "movie_frame_index": np.tile(np.arange(S.MOVIE_FRAMES), S.MOVIE_REPEATS),
        "movie_repeat": np.repeat(np.arange(S.MOVIE_REPEATS), S.MOVIE_FRAMES),
    }
    for rows in (gray, movie):
        k = len(rows["start_frame"])
        rows["start_time"], rows["stop_time"] = t[rows["start_frame"]], t[rows["end_frame"]]
        rows["duration"] = rows["stop_time"] - rows["start_time"]
        for name in (
            "image_index",
            "movie_frame_index",
            "movie_repeat",
            "flashes_since_change",
            "trials_id",
        ):
            rows.setdefault(name, np.full(k, INT_NULL))
        rows["is_sham_change"], rows["active"] = np.zeros(k, bool), np.zeros(k, bool)
        for key, value in rows.items():
            rows[key] = np.array(value, object if isinstance(value, list) else None)
            if rows[key].dtype.kind == "i":
                rows[key] = rows[key].astype(np.int64)
    return gray, movie


def _stimuli(nwb, info, values: dict, clock) -> None:
    from pynwb.image import IndexSeries

    name, images = S.image_set(info.image_set)
    prefix = PRESENTATIONS.replace("{set}", name)
    rows = {key[len(prefix) :]: value for key, value in values.items() if key.startswith(prefix)}
    n = len(rows["start_time"])
    passive = is_passive(info.session_type)
    rows["stimulus_block"] = np.ones(n, np.int64)
    rows["stimulus_block_name"] = np.array(
        ["change_detection_passive" if passive else "change_detection_behavior"] * n, object
    )
    rows["stimulus_name"] = np.array([name] * n, object)
    rows["movie_frame_index"] = rows["movie_repeat"] = np.full(n, -99, np.int64)
    nwb.add_time_intervals(_intervals(name, rows, clock))
    gray, movie = _other_blocks(S.shared()["t"], passive)
    nwb.add_time_intervals(_intervals("spontaneous", gray, clock))
    nwb.add_time_intervals(_intervals("natural_movie_one", movie, clock))
    template = get_class("StimulusTemplate", STIMULUS_TEMPLATE)(
        name=name,
        data=packed(values[f"stimulus/templates/{name}/data"]),
        unwarped=packed(values[f"stimulus/templates/{name}/unwarped"]),
        unit="NA",
        format="raw",
        timestamps=np.full(len(images), np.nan),
        control=np.arange(len(images), dtype=np.uint64),
        control_description=list(images),
    )
    nwb.add_stimulus_template(template)
    # pynwb 4 refuses a new IndexSeries with indexed_timeseries (the link to the template
    # that AllenSDK writes) but still reads one: build it the way pynwb's reader does.
    series = IndexSeries.__new__(IndexSeries, in_construct_mode=True)
    series.__init__(
        name=name,
        data=values[f"stimulus/presentation/{name}/data"],
        unit="N/A",
        indexed_timeseries=template,
        timestamps=values[f"stimulus/presentation/{name}/timestamps"],
    )
    series._in_construct_mode = False
    nwb.add_stimulus(series)


def _eye_tracking(nwb, module, info) -> None:
    from pynwb import TimeSeries

    ellipse = get_class("EllipseSeries", EYE_TRACKING)
    shared, series, clock = S.shared(), {}, None
    for name, key in (
        ("eye_tracking", "eye"),
        ("pupil_tracking", "pupil"),
        ("corneal_reflection_tracking", "cr"),
    ):
        fields = {
            f: packed(shared[f"{key}_{f}"])
            for f in ("data", "area", "area_raw", "width", "height", "angle")
        }
        series[name] = ellipse(
            name=name,
            reference_frame="nose",
            timestamps=clock or packed(shared["eye_t"]),
            **fields,
        )
        clock = clock or series[name]
    series["likely_blink"] = TimeSeries(
        name="likely_blink",
        data=packed(shared["likely_blink"]),
        timestamps=clock,
        unit="N/A",
        description="blinks",
    )
    nwb.add_acquisition(get_class("EllipseEyeTracking", EYE_TRACKING)(**series))
    rig = get_class("OphysEyeTrackingRigMetadata", BEHAVIOR_OPHYS)
    geometry = dict(
        zip(
            RIG_FIELDS,
            (
                [130.0, 0.0, 0.0],
                [0.0, 0.0, 13.1],
                [265.1, -39.3, 1.0],
                [118.6, 86.2, 31.6],
                [0.0, 0.0, 0.0],
            ),
            strict=True,
        )
    )
    units = {f"{f}__unit_of_measurement": "deg" if "rotation" in f else "mm" for f in RIG_FIELDS}
    module.add(
        rig(
            name="eye_tracking_rig_metadata",
            equipment=info.equipment_name,
            **{k: np.array(v) for k, v in geometry.items()},
            **units,
        )
    )


def _metadata(nwb, info) -> None:
    subject = get_class("BehaviorSubject", BEHAVIOR_OPHYS)
    nwb.subject = subject(
        age=f"P{info.age_in_days}D",
        genotype=info.genotype,
        sex=info.sex,
        description="A visual behavior subject with a LabTracks ID",
        species="Mus musculus",
        subject_id=info.mouse_id,
        driver_line=list(info.driver_line),
        reporter_line=info.reporter_line,
    )
    kind = "OphysBehaviorMetadata" if info.kind == "ophys_experiment" else "BehaviorMetadata"
    nwb.add_lab_meta_data(
        get_class(kind, BEHAVIOR_OPHYS)(name="metadata", **metadata_attributes(info))
    )
    parameters = get_class("BehaviorTaskParameters", BEHAVIOR_OPHYS)
    nwb.add_lab_meta_data(parameters(name="task_parameters", **task_attributes(info)))

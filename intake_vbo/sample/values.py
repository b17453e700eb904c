"""What one sample NWB file holds, keyed by HDF5 dataset path: :func:`file_values`.

The template writer (``nwbtemplate``) builds its pynwb objects from this mapping and
``nwbwrite.personalise`` overwrites the same datasets in a copy of the template, so
the two cannot drift apart. Values come from ``session`` (the miniature session plan)
and from the file's :class:`~intake_vbo.sample.fileinfo.FileInfo`.
"""

from __future__ import annotations

import numpy as np

from . import session as S

TRIALS = "intervals/trials/"
PRESENTATIONS = "intervals/{set}_presentations/"
CELLS = "processing/ophys/image_segmentation/cell_specimen_table/"
TRACES = {  # value name -> data path
    "dff": "processing/ophys/dff/traces/data",
    "demixed": "processing/ophys/demixed_trace/traces/data",
    "neuropil": "processing/ophys/neuropil_trace/traces/data",
    "corrected": "processing/ophys/corrected_fluorescence/traces/data",
    "events": "processing/ophys/event_detection/data",
}
TEXT = object  # dtype of text columns: lists of str, written as variable-length strings


def is_passive(session_type: str) -> bool:
    return "passive" in session_type


def reward_volumes(session_type: str) -> tuple[float, float]:
    """``(reward_volume, auto_reward_volume)`` in mL, as the task parameters give them."""
    return (0.010 if "10uL" in session_type else 0.007), 0.005


def invalid_count(n_cells: int) -> int:
    """ROIs that segmentation found but classification rejected (``valid_roi`` False)."""
    return n_cells // 8


def roi_ids(info) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cell_roi_id, cell_specimen_id, valid_roi)`` of every ROI, sorted by id.

    The valid ROIs are the file's cells (the ``ophys_cells_table`` rows); the rejected
    ones take the free ids next to some of them and have ``cell_specimen_id`` -1.
    """
    valid = np.array(info.cell_roi_ids, np.int64)
    rng = np.random.default_rng([info.ident, 7])
    rejected = np.sort(rng.choice(valid, invalid_count(len(valid)), replace=False)) + 1
    ids = np.r_[valid, rejected]
    specimens = np.r_[np.array(info.cell_specimen_ids, np.int64), np.full(len(rejected), -1)]
    order = np.argsort(ids, kind="stable")
    return ids[order], specimens[order], (specimens[order] != -1)


def file_values(info) -> dict[str, np.ndarray]:
    """Every dataset a file's values decide, by path (``{set}`` stands for the image set)."""
    t = S.shared()["t"]
    _, images = S.image_set(info.image_set)
    passive = is_passive(info.session_type)
    run = S.behavior(
        [info.behavior_session_id, info.revision], passive, info.omissions, info.novel, len(images)
    )
    out = _trials(run, t, images, info.session_type, passive)
    out.update(_image_block(run, t, images, passive))
    if not passive:
        frames = run["lick_frames"]
        out["processing/licking/licks/data"] = frames.astype(np.int64)
        out["processing/licking/licks/timestamps"] = t[frames]
        volume, auto_volume = reward_volumes(info.session_type)
        where, auto = (np.array(x) for x in zip(*run["rewards"], strict=True))
        out["processing/rewards/volume/data"] = np.where(auto, auto_volume, volume)
        out["processing/rewards/volume/timestamps"] = t[where]
        out["processing/rewards/autorewarded/data"] = auto.astype(bool)
        out["processing/rewards/autorewarded/timestamps"] = t[where]
    warped, unwarped = S.template_images(info.image_set)
    out["stimulus/templates/{set}/data"] = warped
    out["stimulus/templates/{set}/unwarped"] = unwarped
    out["stimulus/templates/{set}/control_description"] = np.array(images, TEXT)
    if info.kind == "ophys_experiment":
        out.update(_ophys(info, t))
    return out


def named(values: dict, set_name: str) -> dict:
    """``values`` with ``{set}`` in its paths replaced by the image set's name."""
    return {key.replace("{set}", set_name): value for key, value in values.items()}


def _trials(run: dict, t: np.ndarray, images: list[str], session_type: str, passive: bool):
    trial, flash = run["trials"], run["flash"]
    start_frame = flash["onset"][trial["first"]]
    end_frame = trial["end_frame"]
    licks = run["lick_frames"]
    owner = np.searchsorted(start_frame, licks, side="left") - 1  # start < lick <= end
    counts = np.bincount(owner, minlength=S.N_TRIALS) if len(licks) else np.zeros(S.N_TRIALS, int)
    first_lick = np.full(S.N_TRIALS, np.nan)
    for i in range(S.N_TRIALS):
        if counts[i]:
            first_lick[i] = t[licks[owner == i][0]]
    kind = trial["kind"]
    aborted, auto = kind == "aborted", kind == "auto"
    go, catch, hit, false_alarm = kind == "go", kind == "catch", trial["hit"], trial["false_alarm"]
    change_time = np.where(aborted, np.nan, t[trial["change_frame"]])
    latency = np.where(np.isnan(first_lick), np.inf, first_lick - change_time)
    reward_time, reward_volume = np.full(S.N_TRIALS, np.nan), np.zeros(S.N_TRIALS)
    volume, auto_volume = reward_volumes(session_type)
    for frame, is_auto in run["rewards"]:
        i = np.searchsorted(start_frame, frame, side="right") - 1
        reward_time[i], reward_volume[i] = t[frame], auto_volume if is_auto else volume
    names = np.array(images, TEXT)
    initial = names[flash["image"][trial["first"]]]
    changed_to = np.where(trial["changed"], names[flash["image"][trial["change"]]], initial)
    start, stop = t[start_frame], t[end_frame - 1]
    values = {
        "start_time": start,
        "stop_time": stop,
        "initial_image_name": initial,
        "change_image_name": changed_to,
        "is_change": trial["changed"],
        "change_time": change_time,
        "go": go,
        "catch": catch,
        "response_time": np.where(aborted, np.nan, first_lick),
        "response_latency": np.where(aborted, np.nan, latency),
        "reward_time": reward_time,
        "reward_volume": reward_volume,
        "hit": hit,
        "false_alarm": false_alarm,
        "miss": go & ~hit,
        "correct_reject": catch & ~false_alarm,
        "aborted": aborted,
        "auto_rewarded": auto,
        "change_frame": np.where(aborted, -99, trial["change_frame"]),
        "trial_length": stop - start,
    }
    out = {TRIALS + key: value for key, value in values.items()}
    if passive:  # no licks at all: AllenSDK writes an empty ragged column as [""]
        out[TRIALS + "lick_times"] = np.array([""], TEXT)
        out[TRIALS + "lick_times_index"] = np.zeros(S.N_TRIALS, np.uint8)
    else:
        out[TRIALS + "lick_times"] = t[licks]
        out[TRIALS + "lick_times_index"] = np.cumsum(counts).astype(np.uint8)
    return out


def _image_block(run: dict, t: np.ndarray, images: list[str], passive: bool):
    flash = run["flash"]
    onset, omitted = flash["onset"], flash["omitted"]
    index = np.where(omitted, len(images), flash["image"])
    names = np.array([*images, "omitted"], TEXT)
    is_change = flash["is_change"]
    values = {
        "image_index": index.astype(np.int64),
        "image_name": names[index],
        "is_change": is_change.astype(float),
        "is_image_novel": np.where(omitted, np.nan, flash["novel"]),
        "omitted": omitted.astype(float),
        "flashes_since_change": S.flashes_since_change(is_change, omitted),
        "trials_id": flash["trial"].astype(np.int64),
        "is_sham_change": flash["is_sham_change"],
        "active": np.full(S.N_FLASHES, not passive),
        "start_frame": onset.astype(np.int64),
        "end_frame": (onset + S.SHOWN).astype(np.int64),
        "start_time": t[onset],
        "stop_time": t[onset + S.SHOWN],
    }
    values["duration"] = values["stop_time"] - values["start_time"]
    out = {PRESENTATIONS + key: value for key, value in values.items()}
    out["stimulus/presentation/{set}/data"] = index.astype(np.uint64)
    out["stimulus/presentation/{set}/timestamps"] = values["start_time"]
    return out


def _ophys(info, t: np.ndarray) -> dict[str, np.ndarray]:
    ids, specimens, valid = roi_ids(info)
    rate = ophys_rate(info.equipment_name)
    o = S.ophys([info.ident, info.revision], valid, rate, float(t[S.BLOCK1]))
    x, y, width, height = o["box"].T
    out = {
        CELLS + "id": ids,
        CELLS + "cell_specimen_id": specimens,
        CELLS + "valid_roi": valid,
        CELLS + "x": x,
        CELLS + "y": y,
        CELLS + "width": width,
        CELLS + "height": height,
        CELLS + "mask_image_plane": o["plane"],
        CELLS + "image_mask": o["masks"],
        "processing/ophys/dff/traces/timestamps": o["t"],
        "processing/ophys/event_detection/lambdas": o["lambdas"],
        "processing/ophys/event_detection/noise_stds": o["noise_stds"],
        "processing/ophys/corrected_fluorescence/r/data": o["r"],
        "processing/ophys/corrected_fluorescence/RMSE/data": o["rmse"],
        "processing/ophys/images/max_projection": o["max"],
        "processing/ophys/images/average_image": o["average"],
        "processing/ophys/images/segmentation_mask_image": o["segmentation"],
        "processing/ophys/ophys_motion_correction_x/data": o["motion"][0],
        "processing/ophys/ophys_motion_correction_y/data": o["motion"][1],
        "general/optophysiology/imaging_plane_1/imaging_rate": np.float64(rate),
    }
    for i, side in enumerate(("down", "left", "right", "up")):
        out[CELLS + f"max_correction_{side}"] = np.full(len(ids), o["max_correction"][i])
    for name, path in TRACES.items():
        out[path] = o[name]
    return out


def ophys_rate(equipment_name: str) -> float:
    """Frames per second of the imaging rig: a mesoscope plane or a Scientifica scope."""
    return 11.0 if equipment_name.startswith("MESO") else 31.0

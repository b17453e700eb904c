"""Write a realistic-size Visual Behavior Ophys experiment NWB with AllenSDK's own writers.

Run with the AllenSDK side venv (``benchmarks/allensdk_venv.py`` makes it)::

    benchmarks/.allensdk-venv/bin/python benchmarks/make_large_experiment.py [OUT]

``OUT`` defaults to ``benchmarks/.data/large_experiment.nwb`` (git-ignored). Synthetic
but shaped like a released OPHYS_1_images_G experiment, built exactly as NWB-VIEWS.md's
last section says (AllenSDK data objects -> ``BehaviorOphysExperiment(...).to_nwb()`` ->
``NWBHDF5IO.write``), deterministic (fixed seed), about 470 MB, ~5 minutes on 2 cores:

- 150 ROIs (135 valid) in a 512x512 field of view; 140,000 ophys frames at 31 Hz;
  dff / demixed / neuropil / corrected fluorescence (float32), events (float64, gzip),
  motion correction, max/average projections;
- 270,000 stimulus frames at 60 Hz: 5 min gray, 60 min change detection (4,800 image
  flashes of 250 ms + 500 ms gray, 8 images, ~5% omitted), 5 min gray, natural_movie_one
  (10 repeats x 900 frames): 13,802 stimulus presentations;
- 600 trials (go / catch / aborted, first go trials auto-rewarded), licks, rewards,
  running speed and encoder signals at the stimulus frames;
- 270,000 eye-tracking frames (60 Hz) with 300 blinks;
- stimulus templates: 8 images, 300x480 (quarter of the real 1200x1920, to keep the
  file at the intended size).

``--quick`` writes a small file with the same layout (a pipeline check, ~20 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / ".data" / "large_experiment.nwb"
SEED = 20_191_010

STIM_RATE = 60.0
OPHYS_RATE = 31.0
FOV = 512
FLASH_FRAMES, GRAY_FRAMES = 15, 30  # 250 ms image + 500 ms gray
MOVIE_FRAMES, MOVIE_FRAME_DISPLAY = 900, 2  # natural_movie_one: 30 fps on a 60 Hz monitor
IMAGE_SET = "Natural_Images_Lum_Matched_set_ophys_G_2019"
IMAGES = ["im000", "im031", "im035", "im045", "im054", "im073", "im075", "im106"]
SESSION_TYPE = "OPHYS_1_images_G"
IDS = dict(ophys_experiment_id=999_000_001, behavior_session_id=899_000_001,
           ophys_session_id=799_000_001, ophys_container_id=1_099_000_001)  # fmt: skip
SPACING = (0.00078125, 0.00078125)  # mm per pixel, as AllenSDK reads it back


def sizes(quick: bool) -> dict:
    if quick:
        return dict(n_rois=20, gray_frames=600, n_flashes=240, n_trials=30, movie_repeats=1)
    # 18,000 + 4,800 * 45 + 18,000 + 10 * 900 * 2 = 270,000 stimulus frames
    return dict(n_rois=150, gray_frames=18_000, n_flashes=4_800, n_trials=600, movie_repeats=10)


# ---------------------------------------------------------------------------- behaviour
def stimulus_clock(rng, n_frames: int, t0: float) -> np.ndarray:
    jitter = rng.normal(0, 2e-4, n_frames).clip(-6e-4, 6e-4)
    return t0 + np.arange(n_frames) / STIM_RATE + jitter


def plan_trials(rng, n_flashes: int, n_trials: int) -> pd.DataFrame:
    """Per trial: kind, first flash, flash count, change (or abort) flash offset."""
    kind = rng.choice(np.array(["go", "catch", "aborted"]), n_trials, p=[0.55, 0.15, 0.30])
    kind[:5] = "go"  # the first trials are auto-rewarded go trials
    change_at = np.minimum(2 + rng.geometric(0.3, n_trials), 10)  # 3..10 flashes in
    abort_at = np.array([rng.integers(1, c) for c in change_at])
    tail = np.where(kind == "aborted", 2, 4)
    length = np.where(kind == "aborted", abort_at, change_at) + tail
    spare = n_flashes - int(length.sum())
    if spare < 0:
        raise ValueError("too many trials for the flashes")
    full = np.flatnonzero(kind != "aborted")
    length[full] += rng.multinomial(spare, np.full(len(full), 1 / len(full)))
    first = np.concatenate([[0], np.cumsum(length)[:-1]])
    return pd.DataFrame(dict(kind=kind, first=first, length=length, change_at=change_at,
                             abort_at=abort_at))  # fmt: skip


def behaviour(rng, sz: dict, stim_ts: np.ndarray):
    """Presentations, trials, licks and rewards as AllenSDK's writers take them."""
    g, nf, reps = sz["gray_frames"], sz["n_flashes"], sz["movie_repeats"]
    b1 = g  # first frame of the change-detection block
    flash_start = b1 + np.arange(nf) * (FLASH_FRAMES + GRAY_FRAMES)
    b2 = b1 + nf * (FLASH_FRAMES + GRAY_FRAMES)
    b3 = b2 + g
    n_movie = reps * MOVIE_FRAMES
    plan = plan_trials(rng, nf, sz["n_trials"])

    # images: change only at go trials' change flashes
    image = np.empty(nf, dtype=int)
    current = int(rng.integers(len(IMAGES)))
    change_flash = np.full(len(plan), -1)
    for k, t in enumerate(plan.itertuples()):
        image[t.first : t.first + t.length] = current
        if t.kind != "aborted":
            change_flash[k] = t.first + t.change_at
        if t.kind == "go":
            current = int(rng.choice([i for i in range(len(IMAGES)) if i != current]))
            image[change_flash[k] : t.first + t.length] = current
    protected = np.zeros(nf, bool)
    cf = change_flash[change_flash >= 0]
    protected[cf] = protected[cf - 1] = True
    protected[0] = True
    omitted = np.zeros(nf, bool)
    candidates = np.flatnonzero(~protected)
    omitted[rng.choice(candidates, int(0.05 * nf), replace=False)] = True

    # licks, rewards and trial outcomes
    licks: list[float] = []
    rows = []
    go_seen = 0
    for k, t in enumerate(plan.itertuples()):
        start = stim_ts[flash_start[t.first]]
        last = t.first + t.length
        stop = (stim_ts[flash_start[last]] if last < nf else stim_ts[b2]) - 1 / STIM_RATE
        row = dict(start_time=start, stop_time=stop, go=t.kind == "go",
                   catch=t.kind == "catch", aborted=t.kind == "aborted",
                   change_time=np.nan, change_frame=np.nan, response_time=np.nan,
                   reward_time=np.nan, reward_volume=0.0, auto_rewarded=False)  # fmt: skip
        row["initial_image_name"] = IMAGES[image[t.first]]
        row["change_image_name"] = row["initial_image_name"]
        trial_licks: list[float] = []
        if t.kind == "aborted":
            onset = stim_ts[flash_start[t.first + t.abort_at]]
            trial_licks = bout(rng, onset + rng.uniform(0.1, 0.6), rng.integers(1, 4))
        else:
            f = change_flash[k]
            change_time = stim_ts[flash_start[f]]
            row.update(change_time=change_time, change_frame=flash_start[f])
            if t.kind == "go":
                row["change_image_name"] = IMAGES[image[f]]
                go_seen += 1
            responded = rng.random() < (0.8 if t.kind == "go" else 0.2)
            if responded:
                trial_licks = bout(rng, change_time + rng.uniform(0.25, 0.6),
                                   rng.integers(3, 9))  # fmt: skip
                row["response_time"] = trial_licks[0]
            if t.kind == "go" and go_seen <= 5:
                row.update(auto_rewarded=True, reward_time=change_time + 1 / STIM_RATE,
                           reward_volume=0.005)  # fmt: skip
            elif t.kind == "go" and responded:
                row.update(reward_time=trial_licks[0] + 1 / STIM_RATE, reward_volume=0.007)
            row["hit"] = t.kind == "go" and responded
            row["miss"] = t.kind == "go" and not responded
            row["false_alarm"] = t.kind == "catch" and responded
            row["correct_reject"] = t.kind == "catch" and not responded
        for key in ("hit", "miss", "false_alarm", "correct_reject"):
            row.setdefault(key, False)
        row["response_latency"] = (row["response_time"] - row["change_time"]
                                   if np.isfinite(row["response_time"]) else np.inf)  # fmt: skip
        row["lick_times"] = np.array(trial_licks)
        licks += trial_licks
        rows.append(row)
    spontaneous = np.sort(rng.uniform(stim_ts[0], stim_ts[b1 - 1], 40)).tolist()
    spontaneous += np.sort(rng.uniform(stim_ts[b2], stim_ts[-1], 60)).tolist()
    licks = np.sort(np.array(licks + spontaneous))

    trials = pd.DataFrame(rows)
    trials["stimulus_change"] = trials["go"]
    trials["trial_length"] = trials["stop_time"] - trials["start_time"]
    trials = trials[["start_time", "stop_time", "initial_image_name", "change_image_name",
                     "stimulus_change", "change_time", "go", "catch", "lick_times",
                     "response_time", "response_latency", "reward_time", "reward_volume",
                     "hit", "false_alarm", "miss", "correct_reject", "aborted",
                     "auto_rewarded", "change_frame", "trial_length"]]  # fmt: skip
    trials.index = pd.RangeIndex(len(trials), name="trials_id")
    assert sum(len(x) for x in trials["lick_times"]) != len(trials)  # keep lick_times ragged

    rewarded = trials[trials["reward_volume"] > 0]
    rewards = pd.DataFrame({"volume": rewarded["reward_volume"].to_numpy(),
                            "timestamps": rewarded["reward_time"].to_numpy(),
                            "auto_rewarded": rewarded["auto_rewarded"].to_numpy()})  # fmt: skip
    lick_df = pd.DataFrame(
        {"timestamps": licks, "frame": np.searchsorted(stim_ts, licks).clip(0, len(stim_ts) - 1)}
    )

    presentations = presentations_table(stim_ts, g, flash_start, image, omitted, b2, b3, n_movie)
    return presentations, trials, lick_df, rewards


def bout(rng, first: float, n: int) -> list[float]:
    return (first + np.concatenate([[0], np.cumsum(rng.uniform(0.12, 0.18, n - 1))])).tolist()


def presentations_table(stim_ts, g, flash_start, image, omitted, b2, b3, n_movie):
    def block(start, end, **cols):
        n = len(start)
        d = dict(start_frame=start, end_frame=end, start_time=stim_ts[start],
                 stop_time=stim_ts[np.minimum(end, len(stim_ts) - 1)],
                 image_index=np.full(n, -99), image_name=np.full(n, np.nan, object),
                 movie_frame_index=np.full(n, -99), movie_repeat=np.full(n, -99),
                 is_change=pd.array([None] * n, dtype="boolean"),
                 is_image_novel=pd.array([None] * n, dtype="boolean"),
                 omitted=pd.array([None] * n, dtype="boolean"))  # fmt: skip
        d.update(cols)
        return pd.DataFrame(d)

    nf = len(flash_start)
    names = np.array(IMAGES + ["omitted"], dtype=object)
    index = np.where(omitted, len(IMAGES), image)
    shown = np.where(omitted, -1, image)
    change = np.zeros(nf, bool)
    prev = -1
    for i in range(nf):  # AllenSDK's rule: a new image among non-omitted flashes
        if shown[i] >= 0:
            change[i] = prev >= 0 and shown[i] != prev
            prev = shown[i]
    since = np.zeros(nf, int)
    for i in range(1, nf):
        since[i] = since[i - 1] if omitted[i] else (0 if change[i] else since[i - 1] + 1)
    movie = np.arange(n_movie)
    parts = [
        block(np.array([0]), np.array([g]), stimulus_block=0,
              stimulus_block_name="initial_gray_screen_5min", stimulus_name="spontaneous"),
        block(flash_start, flash_start + FLASH_FRAMES, stimulus_block=1,
              stimulus_block_name="change_detection_behavior", stimulus_name=IMAGE_SET,
              image_index=index, image_name=names[index],
              is_change=pd.array(change, dtype="boolean"),
              is_image_novel=pd.array(np.zeros(nf, bool), dtype="boolean"),
              omitted=pd.array(omitted, dtype="boolean"), flashes_since_change=since),
        block(np.array([b2]), np.array([b3]), stimulus_block=2,
              stimulus_block_name="post_behavior_gray_screen_5min",
              stimulus_name="spontaneous"),
        block(b3 + movie * MOVIE_FRAME_DISPLAY, b3 + (movie + 1) * MOVIE_FRAME_DISPLAY,
              stimulus_block=3, stimulus_block_name="natural_movie_one",
              stimulus_name="natural_movie_one", movie_frame_index=movie % MOVIE_FRAMES,
              movie_repeat=movie // MOVIE_FRAMES),
    ]  # fmt: skip
    df = pd.concat(parts, ignore_index=True)
    df["flashes_since_change"] = df["flashes_since_change"].fillna(0).astype(int)
    df["duration"] = df["stop_time"] - df["start_time"]
    return df


def running(rng, stim_ts: np.ndarray):
    n = len(stim_ts)
    from scipy.signal import lfilter

    drive = rng.normal(0, 1, n)
    speed = lfilter([0.02], [1, -0.98], drive) * 40 + 8  # smooth, mostly forward
    bouts = lfilter([0.001], [1, -0.999], (rng.random(n) < 0.0005) * 20.0)
    speed = np.clip(speed + bouts * 40, -5, 80)
    raw = speed + rng.normal(0, 3, n)
    dx = raw / STIM_RATE / (2 * np.pi * 8.25) * 360  # degrees per frame, 8.25 cm wheel radius
    v_sig = (np.cumsum(dx) / 360 * 5.0) % 5.0
    v_in = np.full(n, 5.0)
    acq = pd.DataFrame({"dx": dx, "v_in": v_in, "v_sig": v_sig},
                       index=pd.Index(stim_ts, name="timestamps"))  # fmt: skip
    return (pd.DataFrame({"timestamps": stim_ts, "speed": speed}),
            pd.DataFrame({"timestamps": stim_ts, "speed": raw}), acq)  # fmt: skip


def eye_tracking(rng, n: int, t0: float) -> pd.DataFrame:
    ts = t0 + np.arange(n) / STIM_RATE + rng.normal(0, 1e-4, n)

    def wobble(mean, sd, smooth=0.99):
        from scipy.signal import lfilter

        return mean + lfilter([np.sqrt(1 - smooth**2)], [1, -smooth], rng.normal(0, sd, n))

    df = pd.DataFrame({"timestamps": ts})
    for part, (cx, cy, w, h) in {"eye": (320, 240, 190, 130), "pupil": (325, 245, 42, 40),
                                 "cr": (330, 230, 7, 6)}.items():  # fmt: skip
        df[f"{part}_center_x"] = wobble(cx, 3)
        df[f"{part}_center_y"] = wobble(cy, 3)
        df[f"{part}_width"] = wobble(w, w * 0.05)
        df[f"{part}_height"] = wobble(h, h * 0.05)
        df[f"{part}_phi"] = wobble(0.0, 0.05)
        df[f"{part}_area_raw"] = np.pi * df[f"{part}_width"] * df[f"{part}_height"]
    blink = np.zeros(n, bool)
    for s in rng.choice(n - 20, n // 900, replace=False):  # 300 blinks at full size
        blink[s : s + rng.integers(4, 13)] = True
    eye_shut = blink & (rng.random(n) < 0.5)
    df.loc[blink, "eye_area_raw"] *= rng.uniform(0.05, 0.3, int(blink.sum()))
    df.loc[blink, [c for c in df.columns if c.startswith("pupil_")]] = np.nan
    df.loc[eye_shut, "eye_area_raw"] = np.nan
    df["likely_blink"] = blink
    for part in ("eye", "pupil", "cr"):
        df[f"{part}_area"] = df[f"{part}_area_raw"].where(~blink)
    return df


# ---------------------------------------------------------------------------- ophys
def rois(rng, n: int) -> pd.DataFrame:
    yy, xx = np.mgrid[0:FOV, 0:FOV]
    rows = []
    for i in range(n):
        cy, cx = rng.uniform(15, FOV - 15, 2)
        ry, rx = rng.uniform(4, 9, 2)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        ys, xs = np.nonzero(mask)
        row = dict(cell_roi_id=1_080_740_000 + 3 * i, cell_specimen_id=1_086_490_000 + 7 * i,
                   height=int(ys.max() - ys.min() + 1), mask_image_plane=0)  # fmt: skip
        for side in ("down", "left", "right", "up"):
            row[f"max_correction_{side}"] = rng.uniform(0, 10)
        row.update(valid_roi=bool(i % 10 != 3), width=int(xs.max() - xs.min() + 1),
                   x=int(xs.min()), y=int(ys.min()), roi_mask=mask)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows).set_index("cell_specimen_id")


def traces(rng, n_rois: int, n_frames: int):
    from scipy.signal import lfilter

    events = np.zeros((n_rois, n_frames))
    for i in range(n_rois):
        k = rng.poisson(n_frames * 0.003)
        events[i, rng.choice(n_frames, k, replace=False)] = rng.exponential(0.3, k)
    decay = np.exp(-1 / (0.7 * OPHYS_RATE))
    calcium = lfilter([1.0], [1, -decay], events, axis=1)
    dff = (calcium + rng.normal(0, 0.05, calcium.shape)).astype(np.float32)
    baseline = rng.uniform(100, 500, (n_rois, 1))
    neuropil = (0.6 * baseline + lfilter([0.05], [1, -0.995], rng.normal(0, 20, calcium.shape),
                                          axis=1)).astype(np.float32)  # fmt: skip
    demixed = (baseline * (1 + calcium) + 0.7 * neuropil
               + rng.normal(0, 3, calcium.shape)).astype(np.float32)  # fmt: skip
    corrected = (demixed - 0.7 * neuropil).astype(np.float32)
    return events, dff, demixed, neuropil, corrected


def projections(rng, table: pd.DataFrame):
    base = rng.normal(60, 12, (FOV, FOV))
    for mask in table["roi_mask"]:
        base[mask] += rng.uniform(40, 120)
    avg = np.clip(base, 0, 255).astype(np.uint8)
    mx = np.clip(base * 1.6 + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    return mx, avg


def templates(rng):
    h, w = 300, 480
    yy, xx = np.mgrid[0:h, 0:w]
    visible = ((yy - h / 2) / (h * 0.62)) ** 2 + ((xx - w / 2) / (w * 0.58)) ** 2 <= 1
    warped, unwarped = [], []
    for _ in IMAGES:
        img = np.cumsum(np.cumsum(rng.normal(0, 1, (h, w)), 0), 1)
        img = (img - img.min()) / np.ptp(img) * 255
        warped.append(img.astype(np.uint8))
        u = img.copy()
        u[~visible] = np.nan
        unwarped.append(u)
    return warped, unwarped


# ---------------------------------------------------------------------------- assemble
def build(quick: bool):
    from allensdk.brain_observatory.behavior.behavior_ophys_experiment import (
        BehaviorOphysExperiment,
    )
    from allensdk.brain_observatory.behavior.behavior_session import BehaviorSession
    from allensdk.brain_observatory.behavior.data_objects import BehaviorSessionId
    from allensdk.brain_observatory.behavior.data_objects.cell_specimens.cell_specimens import (
        CellSpecimenMeta,
        CellSpecimens,
    )
    from allensdk.brain_observatory.behavior.data_objects.cell_specimens.events import Events
    from allensdk.brain_observatory.behavior.data_objects.cell_specimens.traces import (
        corrected_fluorescence_traces as cft,
    )
    from allensdk.brain_observatory.behavior.data_objects.cell_specimens.traces import (
        demixed_traces,
        dff_traces,
        neuropil_traces,
    )
    from allensdk.brain_observatory.behavior.data_objects.eye_tracking.eye_tracking_table import (
        EyeTrackingTable,
    )
    from allensdk.brain_observatory.behavior.data_objects.eye_tracking.rig_geometry import (
        Coordinates,
        RigGeometry,
    )
    from allensdk.brain_observatory.behavior.data_objects.licks import Licks
    from allensdk.brain_observatory.behavior.data_objects.metadata import (
        behavior_metadata as bm,
    )
    from allensdk.brain_observatory.behavior.data_objects.metadata import (
        ophys_experiment_metadata as om,
    )
    from allensdk.brain_observatory.behavior.data_objects.metadata import (
        subject_metadata as sm,
    )
    from allensdk.brain_observatory.behavior.data_objects.metadata.behavior_ophys_metadata import (
        BehaviorOphysMetadata,
    )
    from allensdk.brain_observatory.behavior.data_objects.motion_correction import (
        MotionCorrection,
    )
    from allensdk.brain_observatory.behavior.data_objects.projections import Projections
    from allensdk.brain_observatory.behavior.data_objects.rewards import Rewards
    from allensdk.brain_observatory.behavior.data_objects.running_speed.running_acquisition import (
        RunningAcquisition,
    )
    from allensdk.brain_observatory.behavior.data_objects.running_speed.running_speed import (
        RunningSpeed,
    )
    from allensdk.brain_observatory.behavior.data_objects.stimuli.presentations import (
        Presentations,
    )
    from allensdk.brain_observatory.behavior.data_objects.stimuli.stimuli import Stimuli
    from allensdk.brain_observatory.behavior.data_objects.stimuli.stimulus_templates import (
        StimulusTemplateFactory,
    )
    from allensdk.brain_observatory.behavior.data_objects.stimuli.templates import Templates
    from allensdk.brain_observatory.behavior.data_objects.task_parameters import TaskParameters
    from allensdk.brain_observatory.behavior.data_objects.timestamps.ophys_timestamps import (
        OphysTimestamps,
    )
    from allensdk.brain_observatory.behavior.data_objects.timestamps.stimulus_timestamps.stimulus_timestamps import (  # noqa: E501
        StimulusTimestamps,
    )
    from allensdk.brain_observatory.behavior.data_objects.trials.trials import Trials
    from allensdk.brain_observatory.behavior.image_api import Image

    sz = sizes(quick)
    rng = np.random.default_rng(SEED)
    n_stim = 2 * sz["gray_frames"] + sz["n_flashes"] * (FLASH_FRAMES + GRAY_FRAMES)
    n_stim += sz["movie_repeats"] * MOVIE_FRAMES * MOVIE_FRAME_DISPLAY
    stim_ts = stimulus_clock(rng, n_stim, t0=25.0)
    # ophys starts 8 s before the stimulus and ends ~8 s after it (140,000 frames at full size)
    n_ophys = 140_000 if not quick else int((n_stim / STIM_RATE + 16) * OPHYS_RATE)
    ophys_ts = stim_ts[0] - 8.0 + np.arange(n_ophys) / OPHYS_RATE

    presentations, trials_df, licks_df, rewards_df = behaviour(rng, sz, stim_ts)
    speed, raw_speed, acquisition = running(rng, stim_ts)
    eye = eye_tracking(rng, n_stim, stim_ts[0] + 0.0123)
    table = rois(rng, sz["n_rois"])
    events, dff, demixed, neuropil, corrected = traces(rng, sz["n_rois"], n_ophys)
    mx, avg = projections(rng, table)
    warped, unwarped = templates(rng)
    motion = pd.DataFrame({"x": rng.integers(-8, 9, n_ophys), "y": rng.integers(-8, 9, n_ophys)})

    date = dt.datetime(2019, 10, 10, 8, 58, 50, tzinfo=dt.timezone.utc)
    response_window = [0.15, 0.75]
    trials = Trials(trials_df, response_window_start=response_window[0])
    task = TaskParameters(
        blank_duration_sec=[0.5, 0.5], stimulus_duration_sec=0.25, omitted_flash_fraction=0.05,
        response_window_sec=response_window, reward_volume=0.007, auto_reward_volume=0.005,
        session_type=SESSION_TYPE, stimulus="images", stimulus_distribution="geometric",
        task_type="change detection", n_stimulus_frames=n_stim, stimulus_name=IMAGE_SET,
    )  # fmt: skip
    template = StimulusTemplateFactory.from_processed(
        image_set_name=IMAGE_SET, image_attributes=[{"image_name": n} for n in IMAGES],
        unwarped=unwarped, warped=warped,
    )  # fmt: skip
    stimuli = Stimuli(Presentations(presentations, trials=trials), Templates({IMAGE_SET: template}))
    subject = sm.subject_metadata.SubjectMetadata(
        sex=sm.sex.Sex("F"), age=sm.age.Age(152),
        reporter_line=sm.reporter_line.ReporterLine("Ai148(TIT2L-GC6f-ICL-tTA2)"),
        full_genotype=sm.full_genotype.FullGenotype(
            "Sst-IRES-Cre/wt;Ai148(TIT2L-GC6f-ICL-tTA2)/wt"),
        driver_line=sm.driver_line.DriverLine(["Sst-IRES-Cre"]),
        mouse_id=sm.mouse_id.MouseId("457841"),
    )  # fmt: skip
    bsid = BehaviorSessionId(IDS["behavior_session_id"])
    behavior_meta = bm.behavior_metadata.BehaviorMetadata(
        date_of_acquisition=bm.date_of_acquisition.DateOfAcquisition(date),
        subject_metadata=subject, behavior_session_id=bsid,
        equipment=bm.equipment.Equipment("CAM2P.4"),
        stimulus_frame_rate=bm.stimulus_frame_rate.StimulusFrameRate(STIM_RATE),
        session_type=bm.session_type.SessionType(SESSION_TYPE),
        behavior_session_uuid=bm.behavior_session_uuid.BehaviorSessionUUID(
            uuid.UUID(bytes=rng.bytes(16), version=4)),
        project_code=bm.project_code.ProjectCode("VisualBehavior"),
    )  # fmt: skip
    session = BehaviorSession(
        behavior_session_id=bsid,
        stimulus_timestamps=StimulusTimestamps(stim_ts, monitor_delay=0.0),
        running_acquisition=RunningAcquisition(acquisition),
        raw_running_speed=RunningSpeed(raw_speed, filtered=False),
        running_speed=RunningSpeed(speed, filtered=True),
        licks=Licks(licks_df), rewards=Rewards(rewards_df), stimuli=stimuli,
        task_parameters=task, trials=trials, metadata=behavior_meta,
        date_of_acquisition=bm.date_of_acquisition.DateOfAcquisition(date),
        eye_tracking_table=EyeTrackingTable(eye),
        eye_tracking_rig_geometry=RigGeometry(
            equipment="CAM2P.4",
            monitor_position_mm=Coordinates(118.6, 86.2, 31.6),
            monitor_rotation_deg=Coordinates(0.0, 0.0, 0.0),
            camera_position_mm=Coordinates(130.0, 0.0, 0.0),
            camera_rotation_deg=Coordinates(0.0, 0.0, 13.1),
            led_position=Coordinates(265.1, -39.3, 1.0)),
    )  # fmt: skip

    roi_ids = table["cell_roi_id"].to_numpy()

    def per_roi(name, data):
        return pd.DataFrame({name: list(data)}, index=pd.Index(roi_ids, name="cell_roi_id"))

    corrected_df = per_roi("corrected_fluorescence", corrected)
    corrected_df["r"] = rng.uniform(0.5, 0.9, len(roi_ids))
    corrected_df["RMSE"] = rng.uniform(0.05, 0.3, len(roi_ids))
    timestamps = OphysTimestamps(ophys_ts)
    plane = om.imaging_plane.ImagingPlane(
        ophys_frame_rate=OPHYS_RATE,
        targeted_structure="VISp",
        excitation_lambda=910.0,
        indicator="GCaMP6f",
    )
    cells = CellSpecimens(
        cell_specimen_table=table,
        meta=CellSpecimenMeta(imaging_plane=plane, emission_lambda=520.0),
        events=Events(events=events, frame_rate_hz=OPHYS_RATE, events_meta=pd.DataFrame({
            "cell_roi_id": roi_ids, "lambda": rng.uniform(0.01, 0.2, len(roi_ids)),
            "noise_std": rng.uniform(0.01, 0.05, len(roi_ids))})),
        ophys_timestamps=timestamps, segmentation_mask_image_spacing=SPACING,
        corrected_fluorescence_traces=cft.CorrectedFluorescenceTraces(corrected_df),
        dff_traces=dff_traces.DFFTraces(per_roi("dff", dff)),
        demixed_traces=demixed_traces.DemixedTraces(per_roi("demixed_trace", demixed)),
        neuropil_traces=neuropil_traces.NeuropilTraces(per_roi("neuropil_trace", neuropil)),
        exclude_invalid_rois=False,
    )  # fmt: skip
    ophys_meta = om.ophys_experiment_metadata.OphysExperimentMetadata(
        ophys_experiment_id=IDS["ophys_experiment_id"],
        ophys_session_id=om.ophys_session_id.OphysSessionId(IDS["ophys_session_id"]),
        ophys_container_id=om.ophys_container_id.OphysContainerId(IDS["ophys_container_id"]),
        field_of_view_shape=om.field_of_view_shape.FieldOfViewShape(height=FOV, width=FOV),
        imaging_depth=om.imaging_depth.ImagingDepth(175),
        targeted_imaging_depth=om.targeted_imaging_depth.TargetedImagingDepth(175),
        project_code=om.ophys_project_code.OphysProjectCode("VisualBehavior"),
    )  # fmt: skip
    return BehaviorOphysExperiment(
        behavior_session=session,
        projections=Projections(max_projection=Image(mx, SPACING, "mm"),
                                avg_projection=Image(avg, SPACING, "mm")),
        ophys_timestamps=timestamps, cell_specimens=cells,
        metadata=BehaviorOphysMetadata(behavior_meta, ophys_meta),
        motion_correction=MotionCorrection(motion),
        date_of_acquisition=bm.date_of_acquisition.DateOfAcquisitionOphys(date),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="a small file, same layout")
    args = parser.parse_args()
    import warnings

    import pynwb

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    experiment = build(args.quick)
    t1 = time.perf_counter()
    nwbfile = experiment.to_nwb()  # before NWBHDF5IO: registers the extension types
    t2 = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".partial")
    with pynwb.NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwbfile)
    tmp.replace(args.out)
    t3 = time.perf_counter()
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.0f} MB; build {t1 - t0:.0f} s, "
          f"to_nwb {t2 - t1:.0f} s, write {t3 - t2:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()

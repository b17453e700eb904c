"""The values of one sample NWB file: a short Visual Behavior session, internally consistent.

Every file runs the same miniature session plan: a gray screen, a change-detection
block of :data:`N_FLASHES` image flashes (250 ms on, 500 ms gray) split into
:data:`N_TRIALS` trials, a second gray screen and two repeats of a short movie. The
stimulus clock, the running wheel and the eye camera (:func:`shared`) are the same in
every file; what a session did is drawn per file (:func:`behavior`): trial lengths,
go / catch / aborted / auto-rewarded trials, the image sequence with its changes and
omissions, licks that make hits and false alarms, the rewards they earn. A passive
session has no licks and no rewards. Experiments add their ROIs and traces
(:func:`ophys`). Shapes are fixed (a template per shape; see ``nwbwrite``), so the
counts of trials, flashes, licks and rewards are constants.
"""

from __future__ import annotations

from functools import cache

import numpy as np

FPS = 60.0
FLASH = 45  # frames from one flash onset to the next (0.75 s)
SHOWN = 15  # frames an image is on (0.25 s)
GRAY = 180  # frames of each gray-screen block
N_TRIALS = 16
N_FLASHES = 104
N_LICKS = 30
N_AUTO = 2  # the first trials of an active session are auto-rewarded
N_HITS = 5
N_REWARDS = N_AUTO + N_HITS
MOVIE_FRAMES, MOVIE_REPEATS, MOVIE_HOLD = 30, 2, 2  # a movie frame stays 2 monitor frames
BLOCK1 = GRAY  # first frame of the change-detection block
N_FRAMES = 2 * GRAY + N_FLASHES * FLASH + MOVIE_FRAMES * MOVIE_REPEATS * MOVIE_HOLD + 1
EYE_STEP = 8  # one eye-camera frame every 8 stimulus frames
N_EYE = N_FRAMES // EYE_STEP
OPHYS_FRAMES = 64
FOV = 64  # field of view, pixels a side
IMAGE_SHAPE = (12, 16)
_SETS = {  # image set letter -> (stimulus_name, image names)
    "A": (
        "Natural_Images_Lum_Matched_set_training_2017.07.14",
        "im061 im062 im063 im065 im066 im069 im077 im085",
    ),
    "B": (
        "Natural_Images_Lum_Matched_set_ophys_6_2017.07.14",
        "im000 im012 im018 im024 im031 im035 im045 im054",
    ),
    "G": (
        "Natural_Images_Lum_Matched_set_ophys_G_2019",
        "im012 im036 im044 im047 im078 im083 im104 im111",
    ),
    "H": (
        "Natural_Images_Lum_Matched_set_ophys_H_2019",
        "im005 im024 im034 im075 im087 im104 im114 im115",
    ),
    None: ("grating", "gratings_0.0 gratings_90.0 gratings_180.0 gratings_270.0"),
}


def image_set(letter: str | None) -> tuple[str, list[str]]:
    """``(stimulus_name, image names)`` of an image set (``None``: the gratings)."""
    name, images = _SETS[letter]
    return name, images.split()


def _quantise(x: np.ndarray, bits: int) -> np.ndarray:
    """Round to multiples of 2**-bits: the low mantissa bytes become zero and compress."""
    return np.round(np.asarray(x, float) * 2.0**bits) / 2.0**bits


def _smooth(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """A smooth random walk, mean 0 and standard deviation about 1."""
    walk = np.convolve(rng.standard_normal(n + width), np.ones(width) / width, "valid")[:n]
    return (walk - walk.mean()) / (walk.std() or 1.0)


@cache
def shared() -> dict[str, np.ndarray]:
    """The stimulus clock, running wheel and eye tracking every sample file carries."""
    rng = np.random.default_rng(20190101)
    t = _quantise(5.0 + np.arange(N_FRAMES) / FPS + rng.normal(0, 1e-4, N_FRAMES), 14)
    speed = _quantise(np.clip(12 + 14 * _smooth(rng, N_FRAMES, 90), -3, None), 6)
    raw = _quantise(speed + rng.normal(0, 2, N_FRAMES), 6)
    dx = _quantise(speed / FPS / 5.5 * 180 / np.pi, 8)  # degrees of wheel turn per frame
    v_in = np.full(N_FRAMES, 5.0)
    v_sig = _quantise((np.cumsum(dx) / 360 * 5.0) % 5.0, 10)
    out = {"t": t, "speed": speed, "raw": raw, "dx": dx, "v_in": v_in, "v_sig": v_sig}
    out["eye_t"] = t[::EYE_STEP][:N_EYE]
    blink = np.zeros(N_EYE, bool)
    for start in rng.choice(N_EYE - 6, 4, replace=False):
        blink[start : start + int(rng.integers(2, 5))] = True
    for part, (cx, cy, r) in {
        "eye": (320, 240, 60),
        "pupil": (318, 236, 18),
        "cr": (325, 238, 6),
    }.items():
        centre = np.c_[cx + 4 * _smooth(rng, N_EYE, 12), cy + 3 * _smooth(rng, N_EYE, 12)]
        width = r * (1 + 0.08 * _smooth(rng, N_EYE, 20)) + (part == "eye") * 20
        height = r * (1 + 0.08 * _smooth(rng, N_EYE, 20))
        area = np.pi * width * height
        if part != "cr":
            area[blink] = np.nan  # the fit fails while the eye is shut
        out[f"{part}_data"] = _quantise(centre, 4)
        out[f"{part}_width"], out[f"{part}_height"] = _quantise(width, 4), _quantise(height, 4)
        out[f"{part}_angle"] = _quantise(0.1 * _smooth(rng, N_EYE, 30), 8)
        out[f"{part}_area_raw"] = _quantise(area, 2)
    z = np.abs(np.nan_to_num(out["pupil_area_raw"] - np.nanmean(out["pupil_area_raw"])))
    likely = blink | (z > 3 * np.nanstd(out["pupil_area_raw"]))
    likely = np.convolve(likely, np.ones(5), "same") > 0  # dilated by 2 frames each side
    out["likely_blink"] = likely
    for part in ("eye", "pupil", "cr"):
        out[f"{part}_area"] = np.where(likely, np.nan, out[f"{part}_area_raw"])
    return out


def behavior(seed, passive: bool, omissions: bool, novel: bool, n_images: int) -> dict:
    """One session's trials, flashes, licks and rewards (everything in frames and flags).

    Returns
    -------
    dict
        ``trials`` (a dict of per-trial arrays), ``flash`` (per-flash arrays of the
        change-detection block), ``lick_frames`` and ``rewards`` (frame, auto flag).
    """
    rng = np.random.default_rng(seed)
    lengths = 5 + rng.multinomial(N_FLASHES - 5 * N_TRIALS, rng.dirichlet(np.full(N_TRIALS, 2.0)))
    first = np.r_[0, np.cumsum(lengths)[:-1]]  # first flash of each trial
    change = first + lengths - 3  # the scheduled change (or sham change) flash
    kind = np.array(["go"] * N_TRIALS, dtype=object)
    rest = np.arange(0 if passive else N_AUTO, N_TRIALS)
    picked = rng.permutation(rest)
    n_catch = int(rng.integers(2, 4))
    kind[picked[:n_catch]] = "catch"
    if not passive:
        kind[:N_AUTO] = "auto"
        kind[picked[n_catch : n_catch + int(rng.integers(2, 5))]] = "aborted"
    go = np.flatnonzero(kind == "go")
    hit = np.zeros(N_TRIALS, bool)
    false_alarm = np.zeros(N_TRIALS, bool)
    if not passive:
        hit[rng.choice(go, N_HITS, replace=False)] = True
        false_alarm[(kind == "catch") & (rng.random(N_TRIALS) < 0.35)] = True
    changed = (kind == "go") | (kind == "auto")
    # The image sequence: a change flash shows a new image; omissions spare the change,
    # the flash before it and every first flash of a trial.
    image = np.empty(N_FLASHES, int)
    current = int(rng.integers(n_images))
    trial_of = np.repeat(np.arange(N_TRIALS), lengths)
    for i in range(N_TRIALS):
        image[first[i] : change[i]] = current
        if changed[i]:
            current = int(rng.choice([k for k in range(n_images) if k != current]))
        image[change[i] : first[i] + lengths[i]] = current
    omitted = np.zeros(N_FLASHES, bool)
    if omissions:
        spare = np.zeros(N_FLASHES, bool)
        spare[np.r_[change, change - 1, first]] = True
        omitted[rng.choice(np.flatnonzero(~spare), 5, replace=False)] = True
    onset = BLOCK1 + FLASH * np.arange(N_FLASHES)
    change_frame = onset[change]
    end_frame = np.r_[onset[first[1:]], BLOCK1 + N_FLASHES * FLASH]  # next trial's start
    licks, rewards = [], []
    if not passive:
        rewarded = []
        for i in range(N_TRIALS):
            if kind[i] == "aborted":  # an early lick ends the trial's chance of a change
                licks.append(onset[first[i] + 1] + int(rng.integers(0, FLASH * (lengths[i] - 4))))
            elif hit[i] or false_alarm[i] or kind[i] == "auto":
                licks.append(change_frame[i] + int(rng.integers(12, 40)))
                if kind[i] == "auto":
                    rewards.append((change_frame[i], True))
                    rewarded.append(i)
                elif hit[i]:
                    rewards.append((licks[-1] + 1, False))
                    rewarded.append(i)
        left, k = N_LICKS - len(licks), len(rewarded)  # consumption licks, spread evenly
        extra = np.full(k, left // k)
        extra[rng.choice(k, left % k, replace=False)] += 1
        for i, n in zip(rewarded, extra, strict=True):
            start = next(f for f in licks if change_frame[i] < f < end_frame[i])
            licks.extend(start + 8 * np.arange(1, n + 1) + rng.integers(-1, 2, n))
        licks.sort()
    trial = {
        "first": first,
        "change": change,
        "kind": kind,
        "hit": hit,
        "false_alarm": false_alarm,
        "changed": changed,
        "change_frame": change_frame,
        "end_frame": end_frame,
    }
    flash = {
        "onset": onset,
        "image": image,
        "omitted": omitted,
        "trial": trial_of,
        "is_change": np.isin(np.arange(N_FLASHES), change[changed]),
        "is_sham_change": np.isin(np.arange(N_FLASHES), change[kind == "catch"]),
        "novel": np.full(N_FLASHES, float(novel)),
    }
    return {
        "trials": trial,
        "flash": flash,
        "lick_frames": np.array(licks, int),
        "rewards": rewards,
    }


def flashes_since_change(is_change: np.ndarray, omitted: np.ndarray) -> np.ndarray:
    """AllenSDK's count: 0 at a change (and the first flash), +1 per shown flash."""
    out = np.zeros(len(is_change), int)
    for i in range(1, len(is_change)):
        if omitted[i]:
            out[i] = out[i - 1]
        else:
            out[i] = 0 if is_change[i] else out[i - 1] + 1
    return out


def _rois(rng, n: int, weight: np.ndarray) -> dict[str, np.ndarray]:
    """``n`` elliptic ROIs inside the field of view: masks, boxes, planes, and their sums.

    Overlapping ROIs go to further mask planes (``mask_image_plane``), as in the release.
    """
    side = 9  # every ROI fits a 9 x 9 window
    cy, cx = rng.uniform(side / 2, FOV - side / 2, (2, n))
    ry, rx = rng.uniform(1.8, 3.6, (2, n))
    y0, x0 = (cy - side // 2).astype(int), (cx - side // 2).astype(int)
    yy, xx = np.mgrid[:side, :side]
    local = ((yy - (cy - y0)[:, None, None]) / ry[:, None, None]) ** 2 + (
        (xx - (cx - x0)[:, None, None]) / rx[:, None, None]
    ) ** 2 <= 1
    masks = np.zeros((n, FOV, FOV), bool)
    canvases = [np.zeros((FOV, FOV), bool)]
    plane = np.zeros(n, int)
    count, cells = np.zeros((FOV, FOV), np.int64), np.zeros((FOV, FOV))
    for i in range(n):
        window = np.s_[y0[i] : y0[i] + side, x0[i] : x0[i] + side]
        masks[i][window] = local[i]
        while canvases[plane[i]][window][local[i]].any():
            plane[i] += 1
            if plane[i] == len(canvases):
                canvases.append(np.zeros((FOV, FOV), bool))
        canvases[plane[i]][window] |= local[i]
        count[window] += local[i]
        cells[window] += weight[i] * local[i]
    rows, cols = local.any(2), local.any(1)
    box = np.c_[x0 + cols.argmax(1), y0 + rows.argmax(1), cols.sum(1), rows.sum(1)]
    return {"masks": masks, "box": box, "plane": plane, "count": count, "cells": cells}


def ophys(seed, valid: np.ndarray, rate: float, t0: float) -> dict[str, np.ndarray]:
    """ROI masks, traces, events and images of one experiment (``valid`` per ROI)."""
    rng = np.random.default_rng(seed)
    n, frames = len(valid), OPHYS_FRAMES
    baseline = rng.uniform(200, 800, n)
    rois = _rois(rng, n, baseline / baseline.max())
    spikes = (rng.random((frames, n)) < 0.03) * rng.uniform(0.2, 1.2, (frames, n))
    calcium, decay = np.zeros((frames, n)), np.exp(-1 / (0.6 * rate))
    for t in range(frames):
        calcium[t] = spikes[t] + (decay * calcium[t - 1] if t else 0)
    noise = rng.uniform(0.02, 0.08, n)
    dff = _quantise(calcium + noise * rng.standard_normal((frames, n)), 8)
    neuropil = _quantise(baseline * 0.6 + 20 * rng.standard_normal((frames, n)), 2)
    corrected = _quantise(baseline * (1 + dff), 2)
    demixed = _quantise(corrected + 0.7 * neuropil, 2)
    cells = rois["cells"]
    background = rng.normal(60, 8, (FOV, FOV))
    average = np.clip(background + 90 * cells, 0, 255).astype(np.uint8)
    maximum = np.clip(background + 30 + 160 * cells, 0, 255).astype(np.uint8)
    return {
        "masks": rois["masks"],
        "box": rois["box"],
        "plane": rois["plane"],
        "dff": dff.astype(np.float32),
        "demixed": demixed.astype(np.float32),
        "neuropil": neuropil.astype(np.float32),
        "corrected": corrected.astype(np.float32),
        "events": _quantise(spikes, 8),
        "lambdas": np.round(rng.uniform(0.01, 0.3, n), 4),
        "noise_stds": np.round(noise / 2, 4),
        "r": np.round(rng.uniform(0.5, 0.9, n), 3),
        "rmse": np.round(rng.uniform(0.05, 0.3, n), 3),
        "average": average,
        "max": maximum,
        "segmentation": rois["count"],
        "t": t0 + np.arange(frames) / rate,
        "motion": rng.integers(-3, 4, (2, frames)),
        "max_correction": np.round(rng.uniform(0.5, 9, 4), 2),
    }


@cache
def template_images(letter: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(warped uint8, unwarped float64 with NaN outside the visible region)`` of a set."""
    name, images = image_set(letter)
    rng = np.random.default_rng([len(images), *name.encode()])
    low = rng.integers(0, 256, (len(images), 4, 4)).astype(float)
    big = np.kron(low, np.ones((IMAGE_SHAPE[0] // 4 + 1, IMAGE_SHAPE[1] // 4 + 1)))
    warped = big[:, : IMAGE_SHAPE[0], : IMAGE_SHAPE[1]].astype(np.uint8)
    unwarped = warped.astype(float)
    unwarped[:, :, :2] = unwarped[:, :, -2:] = np.nan
    return warped, unwarped

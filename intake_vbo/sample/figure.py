"""The demo's figure: an experiment as AllenSDK's tutorials draw it (matplotlib).

Left, the max projection with every ROI outlined and a scale bar; right, one trial: the
running speed, the licks, the rewards and the image flashes (shaded by image, the change
marked), as the tutorials align behaviour with the stimulus. matplotlib comes with the
``demo`` extra; it is drawn without pyplot (no global state, no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..base.display import CONTRAST

FIGSIZE, DPI = (13.0, 5.5), 100  # 1300 x 550 pixels
MARGIN = 1.0  # seconds shown before a trial starts and after it stops
BAR_STEPS = (1, 2, 5)  # a scale bar is 1, 2 or 5 times a power of ten micrometres


def experiment_figure(experiment: Any, path: str | Path, trial: int | None = None) -> Path:
    """Draw ``experiment``'s max projection with its ROIs, and one trial, into a PNG.

    Parameters
    ----------
    experiment : BehaviorOphysExperiment
        An open experiment (its max projection, ROI masks, trials, running speed, licks,
        rewards and stimulus presentations are read).
    path : str or Path
        The PNG to write.
    trial : int, optional
        The ``trials_id`` to draw; default: the first hit (else the first go trial,
        else the first trial).
    """
    figure = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[1, 1.7])
    draw_projection(left, experiment)
    trials = experiment.trials
    draw_trial(right, experiment, pick_trial(trials) if trial is None else trial)
    ident = int(experiment.ophys_experiment_id)
    meta = experiment.metadata
    figure.suptitle(
        f"ophys experiment {ident}: mouse {meta['mouse_id']}, {meta['cre_line']}, "
        f"{meta['targeted_structure']} at {int(meta['imaging_depth'])} µm, {meta['session_type']}"
    )
    path = Path(path)
    figure.savefig(path, dpi=DPI)
    return path


def pick_trial(trials) -> int:
    """The first hit trial's id, else the first go trial's, else the first trial's."""
    for column in ("hit", "go"):
        if column in trials and trials[column].astype(bool).any():
            return int(trials.index[trials[column].astype(bool)][0])
    return int(trials.index[0])


def draw_projection(ax, experiment) -> None:
    """The max projection in grey, each served ROI outlined, and a scale bar."""
    image = experiment.max_projection
    data = np.asarray(image.data, dtype=float)
    low, high = np.percentile(data, CONTRAST)
    ax.imshow(data, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    masks = experiment.roi_masks["roi_mask"]
    colors = _palette(len(masks))
    for mask, color in zip(masks, colors, strict=True):
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=[color], linewidths=1.2)
    ax.set_title(f"max projection, {len(masks)} ROIs outlined")
    ax.set_axis_off()
    _scale_bar(ax, data.shape, image.spacing[0] * 1000.0)  # mm -> µm


def _palette(n: int) -> list:
    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def bar_length(width_um: float) -> float:
    """A round length (1, 2 or 5 x 10^k µm) near a fifth of ``width_um``.

    >>> bar_length(400.0), bar_length(50.0)
    (50.0, 10.0)
    """
    target = width_um / 5
    power = 10.0 ** math.floor(math.log10(target))
    return max(step * power for step in BAR_STEPS if step * power <= target)


def _scale_bar(ax, shape: tuple[int, int], um_per_pixel: float) -> None:
    """A white bar with its length, in the image's lower right corner."""
    height, width = shape
    length = bar_length(width * um_per_pixel)
    pixels = length / um_per_pixel
    x, y = width * 0.95 - pixels, height * 0.93
    ax.add_patch(Rectangle((x, y), pixels, height * 0.015, color="white"))
    label = f"{length:g} µm"
    ax.text(x + pixels / 2, y - height * 0.03, label, color="white", ha="center", va="bottom")


def draw_trial(ax, experiment, trial: int) -> None:
    """One trial: running speed, licks, rewards and the image flashes, in time."""
    row = experiment.trials.loc[trial]
    start, stop = float(row["start_time"]) - MARGIN, float(row["stop_time"]) + MARGIN
    running = experiment.running_speed
    shown = running[(running.timestamps >= start) & (running.timestamps <= stop)]
    ax.plot(shown.timestamps, shown.speed, color="0.2", linewidth=1, label="running speed")
    top = float(np.nanmax(shown.speed)) if len(shown) else 1.0
    _flashes(ax, experiment.stimulus_presentations, start, stop)
    licks = experiment.licks.timestamps
    licks = licks[(licks >= start) & (licks <= stop)]
    ax.plot(licks, np.full(len(licks), top * 1.08), "|", color="tab:blue", markersize=12,
            markeredgewidth=2, label="licks")  # fmt: skip
    rewards = experiment.rewards.timestamps
    rewards = rewards[(rewards >= start) & (rewards <= stop)]
    ax.plot(rewards, np.full(len(rewards), top * 1.16), "o", color="tab:red", label="rewards")
    if np.isfinite(row.get("change_time", np.nan)):
        ax.axvline(row["change_time"], color="tab:red", linestyle="--", label="change")
    ax.set_xlim(start, stop)
    bottom = min(0.0, float(np.nanmin(shown.speed)) if len(shown) else 0.0)
    ax.set_ylim(bottom - 0.03 * (top - bottom), top * 1.25)
    ax.set_xlabel("time in session (s)")
    ax.set_ylabel("running speed (cm/s)")
    ax.set_title(f"trial {trial}: {_outcome(row)}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")


def _flashes(ax, presentations, start: float, stop: float) -> None:
    """Shade each image flash in the window, one colour per image name."""
    names = presentations.image_name.astype(object)
    inside = (presentations.end_time >= start) & (presentations.start_time <= stop)
    images = presentations[inside & names.notna() & (names != "omitted")]
    colors = dict(zip(sorted(set(images.image_name)), _palette(10), strict=False))
    labelled = set()
    for _, flash in images.iterrows():
        name = flash.image_name
        ax.axvspan(flash.start_time, flash.end_time, color=colors.get(name, "0.8"), alpha=0.25,
                   label=None if name in labelled else name, linewidth=0)  # fmt: skip
        labelled.add(name)


def _outcome(row) -> str:
    """``go, hit, im000 -> im031`` for a trial row."""
    kinds = [k for k in ("go", "catch", "aborted", "auto_rewarded") if bool(row.get(k, False))]
    results = [
        k for k in ("hit", "miss", "false_alarm", "correct_reject") if bool(row.get(k, False))
    ]
    change = f"{row.get('initial_image_name')} -> {row.get('change_image_name')}"
    return ", ".join([*kinds, *results, change])

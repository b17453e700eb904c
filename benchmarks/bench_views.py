"""``views``: the analysis objects on a realistic-size experiment, ours against AllenSDK 2.16.2.

The experiment NWB (about 470 MB: 150 ROIs x 140,000 frames, 512x512, 270,000 stimulus
and eye-tracking frames, 13,800 presentations, 600 trials) is written once by
AllenSDK's own writers (``make_large_experiment.py``, in its venv; about 5 minutes)
and kept in ``benchmarks/.data/``. Every figure is a fresh process, timed from spawn
to exit (interpreter start and imports counted), with the page cache warm for both
readers: each child runs once untimed first.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import allensdk_venv
from common import BENCH, Row, child_env, last_json, run_timed

LARGE = BENCH / ".data" / "large_experiment.nwb"
MIB = 1 << 20


def ensure_large_file() -> Path:
    """The realistic-size experiment, written by AllenSDK's writers if missing."""
    if not LARGE.is_file():
        print(f"writing {LARGE} with AllenSDK's writers (about 5 minutes)...", file=sys.stderr)
        python = str(allensdk_venv.ensure())
        run_timed([python, str(BENCH / "make_large_experiment.py"), str(LARGE)], child_env())
    return LARGE


def run(repeat: int) -> list[Row]:
    """Time both readers on the large experiment: open + max_projection, every attribute,
    a first look, and a 12-open loop.

    Returns
    -------
    list of Row
    """
    path = str(ensure_large_file())
    ours_python, sdk_python = sys.executable, str(allensdk_venv.ensure())

    def child(python: str, reader: str, mode: str) -> tuple[float, dict]:
        cmd = [python, str(BENCH / "views_child.py"), reader, mode, path]
        run_timed(cmd, child_env())  # warms the page cache and the imports' files
        runs = [run_timed(cmd, child_env()) for _ in range(repeat)]
        reports = [last_json(out) for _, out in runs]
        peak = max(r["peak"] for r in reports)
        return statistics.median(t for t, _ in runs), {**reports[-1], "peak": peak}

    size = Path(path).stat().st_size / 1e6
    rows = []
    ours, info = child(ours_python, "ours", "max")
    sdk, sdk_info = child(sdk_python, "allensdk", "max")
    rows.append(
        Row(
            "views: fresh process, open + max_projection",
            ours,
            sdk,
            "AllenSDK 2.16.2 from_nwb_path",
            20.0,
            faster=True,
            note=f"{size:.0f} MB file; ours: {_split(info)}; AllenSDK: {_split(sdk_info)}",
        )
    )
    ours, info = child(ours_python, "ours", "all")
    sdk, sdk_all = child(sdk_python, "allensdk", "all")
    rows.append(
        Row(
            "views: fresh process, open + every attribute",
            ours,
            sdk,
            "AllenSDK 2.16.2",
            3.0,
            faster=True,
            note=f"{info['names']} names; ours: {_split(info)}; AllenSDK: "
            f"{_split(sdk_all)}{_failures(info, sdk_all)}",
        )
    )
    rows.append(
        Row(
            "views: peak memory, open + every attribute",
            info["peak"] / MIB,
            sdk_all["peak"] / MIB,
            "AllenSDK 2.16.2",
            1.0,
            faster=False,
            unit="MiB",
            note="VmHWM of the process, interpreter and imports included",
        )
    )
    _, first = child(ours_python, "ours", "first")
    rows.append(
        Row(
            "views: peak memory, a first look",
            first["peak"] / MIB,
            sdk_info["peak"] / MIB,
            "AllenSDK's open alone",
            0.5,
            faster=False,
            unit="MiB",
            note="open, max_projection, trials, stimulus_presentations, dff_traces; "
            "AllenSDK's open reads everything (its figure: the max_projection run)",
        )
    )
    _, loop = child(ours_python, "ours", "loop")
    rounds = [r / MIB for r in loop["rounds"]]
    rows.append(
        Row(
            "views: 12 opens of one experiment, memory growth",
            rounds[-1] - rounds[1],
            None,
            "",
            50.0,
            unit="MiB",
            note="resident memory after the 12th round minus after the 2nd; each round "
            "opens, reads dff_traces, events, stimulus_presentations, closes; "
            f"rounds (MiB): {', '.join(f'{r:.0f}' for r in rounds)}",
        )
    )
    return rows  # fmt: skip


def _split(info: dict) -> str:
    return f"import {info['import']:.2f} s, open {info['open']:.2f} s, read {info['read']:.2f} s"


def _failures(ours: dict, sdk: dict) -> str:
    text = ""
    for who, info in (("ours", ours), ("AllenSDK", sdk)):
        if info.get("failed"):
            text += f"; {who} raised on {len(info['failed'])}: " + "; ".join(info["failed"])
    return text

"""Child process of ``views``: one reader opens one experiment NWB and reads from it.

Usage: ``views_child.py ours|allensdk MODE PATH``, run by the project's Python (ours) or
the AllenSDK venv's (AllenSDK 2.16.2, whose open reads everything). Modes:

- ``max``: open, then ``max_projection``;
- ``all``: open, then every attribute (every property, and the methods without
  required arguments);
- ``first``: a first look: open, ``max_projection``, ``trials``,
  ``stimulus_presentations``, ``dff_traces``;
- ``loop``: 12 times: open, ``dff_traces``, ``events``, ``stimulus_presentations``,
  close; the resident memory after each.

Prints one JSON line last: seconds of import, open and reads, the peak resident memory
(VmHWM) and, for ``loop``, the resident memory after each round.
"""

import gc
import json
import sys
import time
from pathlib import Path

from common import peak_bytes

METHODS = [
    "get_performance_metrics",
    "get_rolling_performance_df",
    "get_reward_rate",
    "get_segmentation_mask_image",
    "get_cell_specimen_ids",
]
SKIP = {"update_targeted_imaging_depth", "get_cell_specimen_indices", "get_dff_traces"}
FIRST_LOOK = ["max_projection", "trials", "stimulus_presentations", "dff_traces"]
LOOP = ["dff_traces", "events", "stimulus_presentations"]


def opener(reader: str):
    """The function that opens an experiment NWB, and the seconds its import took."""
    start = time.perf_counter()
    if reader == "ours":
        from intake_vbo import open_experiment

        return open_experiment, time.perf_counter() - start
    from allensdk.brain_observatory.behavior.behavior_ophys_experiment import (
        BehaviorOphysExperiment,
    )

    return BehaviorOphysExperiment.from_nwb_path, time.perf_counter() - start


def read(experiment, names: list[str]) -> list[str]:
    """Read each name (call the methods); return the names that raised, with why."""
    failed = []
    for name in names:
        try:
            value = getattr(experiment, name)
            if name in METHODS:
                value()
        except Exception as exc:  # reported beside the figure, not hidden
            failed.append(f"{name}: {type(exc).__name__}: {exc}"[:120])
    return failed


def close(experiment) -> None:
    if hasattr(experiment, "close"):  # AllenSDK's objects hold no file
        experiment.close()


def resident() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024


def main(reader: str, mode: str, path: str) -> dict:
    open_experiment, imported = opener(reader)
    start = time.perf_counter()
    experiment = open_experiment(path)
    opened = time.perf_counter()
    result = {"import": imported, "open": opened - start}
    if mode == "loop":
        close(experiment)
        rounds = []
        for _ in range(12):
            experiment = open_experiment(path)
            result.setdefault("failed", []).extend(read(experiment, LOOP))
            close(experiment)
            del experiment
            gc.collect()
            rounds.append(resident())
        result["rounds"] = rounds
    else:
        names = {
            "max": ["max_projection"],
            "first": FIRST_LOOK,
            "all": [
                n for n in experiment.list_data_attributes_and_methods()
                if n not in SKIP and (n in METHODS or not n.startswith("get_"))
            ],
        }[mode]  # fmt: skip
        result["failed"] = read(experiment, names)
        result["names"] = len(names)
    result["read"] = time.perf_counter() - opened
    result["peak"] = peak_bytes()
    return result


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))

"""What every benchmark shares: repeated timing, fresh-process timing, the result rows.

Every figure is the median of ``N`` repetitions; a fresh process is timed from spawn to
exit, so interpreter start and imports are counted, as a user at a shell counts them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
VENV_BIN = Path(sys.executable).parent  # the project's venv: run.py runs under it


@dataclass
class Row:
    """One line of the results table.

    ``ours`` and ``reference`` are in ``unit``, seconds unless said (``None`` when there
    is no such figure);
    ``faster`` says which way the target reads: ``False`` for "ours within k x of the
    reference" (ratio = ours / reference), ``True`` for "ours k x faster than the
    reference" (ratio = reference / ours), ``None`` for an absolute limit on ``ours``.
    """

    benchmark: str
    ours: float | None
    reference: float | None = None
    reference_name: str = ""
    target: float | None = None
    faster: bool | None = None
    note: str = ""
    unit: str = "s"

    @property
    def ratio(self) -> float | None:
        """Reference / ours for a speed-up target, ours / reference otherwise."""
        if self.ours is None or self.reference is None or self.faster is None:
            return None
        return self.reference / self.ours if self.faster else self.ours / self.reference

    @property
    def met(self) -> bool | None:
        """Whether the target is met (``None`` when there is no target or no figure)."""
        if self.target is None or self.ours is None:
            return None
        if self.faster is None:
            return self.ours < self.target
        ratio = self.ratio
        if ratio is None:
            return None
        return ratio >= self.target if self.faster else ratio <= self.target


def median_time(fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None):
    """Median wall time of ``fn()`` over ``repeat`` runs.

    Parameters
    ----------
    fn : callable
        What is timed.
    repeat : int
        Number of timed runs.
    setup : callable, optional
        Run before each timed run, untimed (e.g. emptying an output directory).

    Returns
    -------
    float
        Seconds.
    """
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """Run ``cmd`` as a fresh process; return (seconds from spawn to exit, stdout).

    Raises
    ------
    RuntimeError
        When the process fails, with the tail of its stderr.
    """
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} ... exited {done.returncode}:\n{tail}")
    return seconds, done.stdout


def last_json(stdout: str) -> dict:
    """The last line of a child's stdout, which the child scripts write as JSON."""
    return json.loads(stdout.strip().splitlines()[-1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: ours, minus anything pointing at real AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra)
    return env


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def peak_bytes() -> int:
    """VmHWM of this process (not ru_maxrss, which keeps the forking parent's peak).

    Standard library only: the AllenSDK venv's child scripts import it too.
    """
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024

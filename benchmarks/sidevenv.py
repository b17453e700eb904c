"""A venv of its own for a reference tool that cannot live beside our dependencies.

AllenSDK pins ``pandas==1.5.3`` and ``numpy<1.24``; remfile must not enter the
project's dependencies. Each gets its own interpreter, the same Python as ours, created
under ``benchmarks/`` (git-ignored) and filled once, on first use, from PyPI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import BENCH


def ensure(name: str, pip_args: list[str], wanted: str) -> Path:
    """The ``python`` of ``benchmarks/<name>``, created and filled unless it holds ``wanted``.

    Parameters
    ----------
    name : str
        The venv's folder under ``benchmarks/``, e.g. ``.allensdk-venv``.
    pip_args : list of str
        What ``pip install`` is given (package specs, or ``-r FILE``).
    wanted : str
        What the install is recorded as (the requirements): a venv holding the same
        is reused as it is.

    Raises
    ------
    RuntimeError
        When the venv cannot be created or the install fails (with pip's last lines).
    """
    venv = BENCH / name
    python, marker = venv / "bin" / "python", venv / ".installed"
    if marker.is_file() and marker.read_text() == wanted:
        return python
    print(f"installing into benchmarks/{name} (a few minutes)...", file=sys.stderr, flush=True)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)])
    _run([str(python), "-m", "pip", "install", "--quiet", *pip_args])
    marker.write_text(wanted)
    return python


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{tail}")

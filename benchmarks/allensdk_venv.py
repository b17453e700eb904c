"""AllenSDK 2.16.2 in a venv of its own (``benchmarks/.allensdk-venv``, git-ignored).

AllenSDK pins ``pandas==1.5.3`` and ``numpy<1.24``, which cannot live beside ours, so it
gets its own interpreter: the same Python as ours (3.11), with the exact set of packages
in ``allensdk-requirements.txt``. Installed once, on first use; a few minutes from PyPI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import BENCH

VENV = BENCH / ".allensdk-venv"
REQUIREMENTS = BENCH / "allensdk-requirements.txt"
MARKER = VENV / ".installed"  # holds the requirements it was installed from


def python() -> Path:
    """The AllenSDK venv's interpreter."""
    return VENV / "bin" / "python"


def ensure() -> Path:
    """Create and fill the venv unless it already holds these requirements.

    Returns
    -------
    Path
        Its ``python``.

    Raises
    ------
    RuntimeError
        When the venv cannot be created or the install fails (with pip's last lines).
    """
    wanted = REQUIREMENTS.read_text()
    if MARKER.is_file() and MARKER.read_text() == wanted:
        return python()
    print(f"installing AllenSDK into {VENV.relative_to(BENCH.parent)} (a few minutes)...",
          file=sys.stderr, flush=True)  # fmt: skip
    _run([sys.executable, "-m", "venv", "--clear", str(VENV)])
    _run([str(python()), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)])
    MARKER.write_text(wanted)
    return python()


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{tail}")

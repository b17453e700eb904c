"""remfile 0.1.15 + h5py in a venv of its own (``benchmarks/.remfile-venv``, git-ignored).

The anchor of the ``range`` benchmark: it must not enter the project's dependencies,
so it gets its own interpreter, the same Python as ours, with h5py and requests at
the versions our venv has (the same HDF5 library reads both ways). Installed once,
on first use; under a minute from PyPI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import BENCH

VENV = BENCH / ".remfile-venv"
REQUIREMENTS = ["remfile==0.1.15", "h5py==3.16.0", "requests==2.34.2"]
MARKER = VENV / ".installed"  # holds the requirements it was installed from


def python() -> Path:
    """The remfile venv's interpreter."""
    return VENV / "bin" / "python"


def ensure() -> Path:
    """Create and fill the venv unless it already holds :data:`REQUIREMENTS`.

    Returns
    -------
    Path
        Its ``python``.

    Raises
    ------
    RuntimeError
        When the venv cannot be created or the install fails (with pip's last lines).
    """
    wanted = "\n".join(REQUIREMENTS)
    if MARKER.is_file() and MARKER.read_text() == wanted:
        return python()
    print(f"installing remfile into {VENV.relative_to(BENCH.parent)}...", file=sys.stderr,
          flush=True)  # fmt: skip
    _run([sys.executable, "-m", "venv", "--clear", str(VENV)])
    _run([str(python()), "-m", "pip", "install", "--quiet", *REQUIREMENTS])
    MARKER.write_text(wanted)
    return python()


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{tail}")

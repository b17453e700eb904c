"""remfile 0.1.15 + h5py in a venv of its own (``benchmarks/.remfile-venv``, git-ignored).

The anchor of the ``range`` benchmark: it must not enter the project's dependencies.
h5py and requests are at the versions our venv has (the same HDF5 library reads both
ways).
"""

from __future__ import annotations

from pathlib import Path

import sidevenv

REQUIREMENTS = ["remfile==0.1.15", "h5py==3.16.0", "requests==2.34.2"]


def ensure() -> Path:
    """The remfile venv's ``python``, installed on first use."""
    return sidevenv.ensure(".remfile-venv", REQUIREMENTS, "\n".join(REQUIREMENTS))

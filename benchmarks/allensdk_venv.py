"""AllenSDK 2.16.2 in a venv of its own (``benchmarks/.allensdk-venv``, git-ignored).

The exact set of packages in ``allensdk-requirements.txt`` (resolved in one step with
``pip install allensdk==2.16.2 'hdmf<4'``: AllenSDK cannot open NWB files with hdmf 6).
"""

from __future__ import annotations

from pathlib import Path

import sidevenv
from common import BENCH

REQUIREMENTS = BENCH / "allensdk-requirements.txt"


def ensure() -> Path:
    """The AllenSDK venv's ``python``, installed on first use (a few minutes)."""
    return sidevenv.ensure(".allensdk-venv", ["-r", str(REQUIREMENTS)], REQUIREMENTS.read_text())

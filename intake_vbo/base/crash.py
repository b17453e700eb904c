"""A test hook: die by SIGKILL at a named step, to prove what a crash there leaves.

The build and the download cache call :func:`crash_point` at the steps where a crash
would leave the most to clean up (see ``tests/test_build.py`` and ``tests/test_cache.py``
for the names). It does nothing unless ``VBO_CRASH_AT`` names that step; then the process
kills itself with SIGKILL, as the OOM killer or a power cut would, so no ``finally``,
``atexit`` or buffered write gets to run. Users never set it.

The variable is read once, at import: an unset hook costs one comparison with ``None``.
"""

from __future__ import annotations

import os
import signal

from .settings import crash_at

CRASH_AT = crash_at()


def crash_point(step: str) -> None:
    """SIGKILL this process if ``VBO_CRASH_AT`` names ``step``; otherwise nothing."""
    if CRASH_AT is not None and step == CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)

"""Progress bars that render where the user is: a terminal, or a Jupyter notebook.

``tqdm.auto`` draws a widget in a notebook and text in a terminal. By default a bar is
shown in a notebook and on a terminal, and left out when output goes to a file or a
pipe (logs stay clean); ``show`` says otherwise.

>>> with progress_bar(3, "files", show=False) as bar:
...     bar.update(3)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where widgets render)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    kernel = get() if get is not None else None
    return kernel is not None and type(kernel).__name__ == "ZMQInteractiveShell"


def progress_bar(total: float, desc: str, unit: str = "it", show: bool | None = None, **options):
    """A ``tqdm.auto`` bar: shown in a notebook or on a terminal unless ``show`` says.

    Parameters
    ----------
    total : number
        The amount to reach (it may grow: ``bar.total += n``).
    desc : str
        The bar's label.
    unit : str
        What is counted (``"B"`` scales to KB, MB, ...).
    show : bool, optional
        Force the bar on or off.
    **options
        Passed to tqdm.
    """
    from tqdm.auto import tqdm

    if show is None:
        show = in_notebook() or sys.stderr.isatty()
    if unit == "B":
        options = {"unit_scale": True, "unit_divisor": 1024, **options}
    return tqdm(total=total, desc=desc, unit=unit, disable=not show, **options)


def progress_iter(items: Iterable, desc: str, unit: str = "it", show: bool | None = None,
                  total: int | None = None):  # fmt: skip
    """``items``, one by one, under a :func:`progress_bar` that closes when they run out.

    The bar advances as the loop takes the next item (so ``continue`` needs no care);
    ``total`` is ``len(items)`` unless given (a generator has no length).
    """
    with progress_bar(len(items) if total is None else total, desc, unit, show) as bar:
        for item in items:
            yield item
            bar.update()

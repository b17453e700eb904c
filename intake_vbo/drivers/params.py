"""Parameters as intake hands them to the drivers: ids, lists of ids and booleans as text.

intake renders templated arguments (``{{ ophys_experiment_id }}``) as strings, so each
driver turns them back into the values they name, with a one-line error otherwise.

>>> as_ids("[951980471, 951980473]", "ophys_experiment_ids")
[951980471, 951980473]
"""

from __future__ import annotations

import warnings

from ..base.errors import VboError

# intake 2.0 warns this for every string parameter value, shell command or not
# (intake.catalog.utils.expand_defaults); ours never are. Loaded with the catalog's
# drivers, so before any of our sources is made.
warnings.filterwarnings(
    "ignore", "Shell command not executed due to getshell=False", UserWarning, "intake"
)


def as_ids(value, name: str) -> list[int] | None:
    """A list of integer ids from a parameter; None (every file) when empty."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, str):  # intake may render the list as its text
        value = [v.strip(" '\"") for v in value.strip().strip("[]()").split(",")]
    try:
        values = list(value)
    except TypeError:
        values = [value]
    ids = [as_id(v, name.removesuffix("s")) for v in values if str(v).strip()]
    return list(dict.fromkeys(ids)) or None


def as_bool(value, name: str) -> bool:
    """A boolean parameter (intake may render it as text)."""
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise VboError(f"{name} {value!r} is not true or false")


def as_id(value, name: str) -> int:
    """An integer id from a parameter (intake renders templated args as text)."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise VboError(f"{name} {value!r} is not an integer id") from None

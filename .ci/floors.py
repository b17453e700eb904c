"""Print pyproject.toml's dependency floors as exact pins: one ``name==floor`` line each.

``make test-floors`` installs with these as constraints (on top of uv's
``--resolution lowest-direct``), so every floor that pyproject.toml declares, in the core
dependencies and in the extras, is the version installed and tested, or the install
fails and says which floor cannot be had together with the others. lowest-direct alone
does not promise that: it takes a higher version of a direct dependency whenever the
newest transitive ones ask for it (boto3 1.34, not the declared 1.28, for example).

Usage: python3 .ci/floors.py [pyproject.toml] > floors.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# name [extras] specifiers [; marker]
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")


def floors(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    own = re.sub(r"[-_.]+", "-", project["name"]).lower()
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    pins: dict[str, str] = {}
    for requirement in requirements:
        found = REQUIREMENT.match(requirement)
        if not found:
            raise SystemExit(f"cannot read requirement {requirement!r}")
        name, _extras, specifiers, marker = found.groups()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key == own:
            continue
        lows = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if not lows:
            raise SystemExit(f"{requirement!r} declares no floor (>=)")
        pin = f"{key}=={lows[0]}" + (f" {marker}" if marker else "")
        if pins.setdefault(key, pin) != pin:
            raise SystemExit(f"{key}: two floors ({pins[key]!r} and {pin!r})")
    return sorted(pins.values())


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(floors(path)))

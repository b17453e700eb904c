"""The analysis views: a VBO NWB file read the way AllenSDK 2.16.2 presents it.

Importing this package is cheap: the openers load their modules (and pandas) on first use.

open_session(source, **kwargs) -> BehaviorSession
    Any behavior or experiment NWB (a session recorded with imaging is served by its
    experiment file, as AllenSDK does).
open_experiment(source, **kwargs) -> BehaviorOphysExperiment
    An experiment NWB (``processing/ophys``); a behavior-only file is a one-line error.
open_file(source) -> NWBReader
    The HDF5 handle with path-based reads, for anything else.
"""

from __future__ import annotations

from importlib import import_module

# public name -> the module that defines it
_PUBLIC = {
    "open_session": "session",
    "BehaviorSession": "session",
    "open_experiment": "experiment",
    "BehaviorOphysExperiment": "experiment",
    "open_file": "file",
    "NWBReader": "file",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))

"""BehaviorSession: AllenSDK 2.16.2's behavior-session view of a VBO NWB file, read lazily.

Each of AllenSDK's 16 public names is here. A data attribute is read with h5py on first
access (only its own datasets) and kept on the object; the three metrics methods compute
from the kept trials on every call and return new objects. pynwb is never used for them
(``nwbfile`` builds its tree on demand, for anything else).

Public interface (stable; ``experiment.BehaviorOphysExperiment`` subclasses it)
-----------------------------------------------------------------------------
open_session(source, **kwargs) -> BehaviorSession
    ``BehaviorSession.open(source, **kwargs)``.
BehaviorSession(reader, *, eye_tracking_z_threshold=3.0, eye_tracking_dilation_frames=2)
    Owns ``reader`` (an open `NWBReader`) and closes it on ``close()``, on leaving a
    ``with`` block, or when garbage-collected.
BehaviorSession.open(source, **kwargs)
    Open a path or binary file-like object and wrap it; closes the file on failure.
repr(view), view._repr_html_()
    One line, and what a notebook shows: key metadata (and an experiment's max-projection
    thumbnail), cheap (see :mod:`intake_vbo.nwb.summary`).
lazy(read)
    Decorator: turns ``read(self) -> value`` into a property read on first access,
    kept in ``self._cache[read.__name__]``; after close() an unread one is a VboError.
Subclasses extend ``_REQUIRES`` (paths a file must have, checked at open) and
``_NOT_DATA`` (public names that ``list_data_attributes_and_methods`` leaves out).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any, BinaryIO

from ..base.errors import VboError
from .file import NWBReader, open_file


def lazy(read: Callable[[Any], Any]) -> property:
    """A property computed by ``read(self)`` on first access and kept on the object.

    The value lives in ``self._cache`` under the function's name, so a value read before
    ``close()`` stays usable after it; reading a new one from a closed file raises a
    one-line `VboError`.
    """
    name = read.__name__

    def get(self):
        cache = self._cache
        if name in cache:
            return cache[name]
        if self._reader.closed:
            raise VboError(f"{self._reader.name}: closed; {name} was not read before close()")
        value = cache[name] = read(self)
        return value

    get.__name__ = name
    get.__doc__ = read.__doc__
    return property(get)


class BehaviorSession:
    """The behavior half of a VBO NWB file, as AllenSDK 2.16.2's ``BehaviorSession`` gives it.

    Parameters
    ----------
    reader : NWBReader
        The open file; the session owns it from now on.
    eye_tracking_z_threshold : float
        |z-score| above which an eye or pupil area counts as a blink (AllenSDK: 3.0).
    eye_tracking_dilation_frames : int
        Frames by which likely blinks are widened (AllenSDK: 2).

    Raises
    ------
    VboError
        The file lacks a part every VBO NWB has (``_REQUIRES``).
    """

    # paths a file of this kind must have, with what the file is said not to be otherwise
    _REQUIRES: tuple[tuple[str, str], ...] = (
        ("general/metadata", "a Visual Behavior NWB file"),
        ("intervals/trials", "a Visual Behavior NWB file"),
    )
    # public names that are not AllenSDK data attributes or methods
    _NOT_DATA = frozenset(
        {
            "open",
            "close",
            "closed",
            "nwbfile",
            "list_data_attributes_and_methods",
            "cell_specimen_table_without_masks",
        }
    )

    def __init__(
        self,
        reader: NWBReader,
        *,
        eye_tracking_z_threshold: float = 3.0,
        eye_tracking_dilation_frames: int = 2,
    ):
        self._reader = reader
        self._cache: dict[str, Any] = {}
        # closes the file when the object is collected; close() runs it early
        self._finalizer = weakref.finalize(self, reader.close)
        self._eye_options = (float(eye_tracking_z_threshold), int(eye_tracking_dilation_frames))
        for path, what in self._REQUIRES:
            reader.require(path, what)

    @classmethod
    def open(cls, source: str | os.PathLike | BinaryIO, *, close_source: bool = False,
             **kwargs):  # fmt: skip
        """Open ``source`` (a path, a URL or a binary file-like object) as this view.

        Parameters
        ----------
        source : str, os.PathLike or binary file-like object
            The NWB file.
        close_source : bool
            A file-like ``source`` becomes the object's: closed when the object is.
        **kwargs
            The constructor's keyword arguments.
        """
        reader = open_file(source, close_source=close_source)
        try:
            return cls(reader, **kwargs)
        except BaseException:
            reader.close()
            raise

    def __repr__(self) -> str:
        """One line: the id, a few key metadata, the file and whether it is open."""
        from .summary import to_text

        return to_text(self)

    def _repr_html_(self) -> str:
        """What a notebook shows: the key metadata (and an experiment's max projection)."""
        from .summary import to_html

        return to_html(self)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the file is closed; attributes already read stay usable."""
        return self._reader.closed

    def close(self) -> None:
        """Close the file (and pynwb's IO, if ``nwbfile`` was used); safe to call twice."""
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def nwbfile(self):
        """The pynwb ``NWBFile`` (built on first access; slow on a large file)."""
        return self._reader.nwbfile

    def list_data_attributes_and_methods(self) -> list[str]:
        """AllenSDK's data attributes and methods of this object, sorted (16 for a session)."""
        names = (n for n in dir(type(self)) if not n.startswith("_"))
        return sorted(n for n in names if n not in self._NOT_DATA)

    # -- the data attributes -----------------------------------------------------------

    @lazy
    def behavior_session_id(self) -> int:
        """``/general/metadata`` attribute ``behavior_session_id``, an int."""
        from .behavior import read_behavior_session_id

        return read_behavior_session_id(self._reader)

    @lazy
    def stimulus_timestamps(self):
        """Stimulus frame times (s), a float64 ndarray (monitor delay already removed)."""
        return self._reader.read("processing/stimulus/timestamps/timestamps")

    @lazy
    def running_speed(self):
        """DataFrame ``timestamps``, ``speed`` (cm/s, sign fixed as AllenSDK fixes it)."""
        from .behavior import read_running_speed

        return read_running_speed(self._reader, filtered=True)

    @lazy
    def raw_running_speed(self):
        """As ``running_speed``, from the unfiltered series."""
        from .behavior import read_running_speed

        return read_running_speed(self._reader, filtered=False)

    @lazy
    def licks(self):
        """DataFrame ``timestamps``, ``frame``; empty (float64 columns) without licks."""
        from .behavior import read_licks

        return read_licks(self._reader)

    @lazy
    def rewards(self):
        """DataFrame ``volume``, ``timestamps``, ``auto_rewarded``; empty without rewards."""
        from .behavior import read_rewards

        return read_rewards(self._reader)

    @lazy
    def trials(self):
        """The trials table, indexed by ``trials_id``, columns in the file's order."""
        from .behavior import read_trials

        return read_trials(self._reader)

    @lazy
    def task_parameters(self) -> dict:
        """The task parameters dict AllenSDK's schema dump gives (image_set derived)."""
        from .behavior import read_task_parameters

        return read_task_parameters(self._reader)

    @lazy
    def metadata(self) -> dict:
        """The session metadata dict, in AllenSDK's key order."""
        from .behavior import read_behavior_metadata

        return read_behavior_metadata(self._reader)

    @lazy
    def stimulus_templates(self):
        """DataFrame indexed by ``image_name``: ``unwarped``, ``warped``; None without one."""
        from .behavior import read_stimulus_templates

        return read_stimulus_templates(self._reader)

    @lazy
    def stimulus_presentations(self):
        """Every stimulus presentation, indexed by ``stimulus_presentations_id``."""
        from .presentations import read_presentations

        return read_presentations(self._reader, lambda: self.trials)

    @lazy
    def eye_tracking(self):
        """Eye tracking indexed by ``frame``, blinks recomputed; empty without it."""
        from .eyes import read_eye_tracking

        threshold, frames = self._eye_options
        return read_eye_tracking(self._reader, z_threshold=threshold, dilation_frames=frames)

    @lazy
    def eye_tracking_rig_geometry(self) -> dict:
        """Camera, LED and monitor positions as ``Coordinates``, and ``equipment``; or {}."""
        from .eyes import read_rig_geometry

        return read_rig_geometry(self._reader)

    # -- metrics, computed per call from the kept trials -------------------------------

    def get_reward_rate(self):
        """Rewards per minute around each trial (ndarray; the first 10 trials NaN)."""
        from .metrics import reward_rate

        return reward_rate(self.trials, self._response_window_start())

    def get_rolling_performance_df(self):
        """Rolling hit, false-alarm and d' rates per trial, indexed by ``trials_id``."""
        from .metrics import rolling_performance

        return rolling_performance(self.trials, self._response_window_start())

    def get_performance_metrics(self, engaged_trial_reward_rate_threshold: float = 2.0) -> dict:
        """Trial counts, reward totals and mean / max rates and d' (engaged and overall)."""
        from .metrics import performance_metrics

        return performance_metrics(
            self.trials,
            self.rewards,
            self._response_window_start(),
            engaged_trial_reward_rate_threshold,
        )

    def _response_window_start(self) -> float:
        return float(self.task_parameters["response_window_sec"][0])


def open_session(source: str | os.PathLike | BinaryIO, **kwargs) -> BehaviorSession:
    """Open a behavior or experiment NWB file as a `BehaviorSession`.

    Parameters
    ----------
    source : str, os.PathLike or binary file-like object
        The NWB file (local path or file-like object).
    **kwargs
        ``eye_tracking_z_threshold`` (3.0), ``eye_tracking_dilation_frames`` (2).
    """
    return BehaviorSession.open(source, **kwargs)

"""Open a VBO NWB file and read its parts by HDF5 path, with h5py only.

The analysis views read every attribute straight from HDF5 datasets: building pynwb's
object tree costs seconds on a released file, and most users want three attributes.
This module therefore imports only h5py and numpy; pandas and pynwb load where used.

Public interface (stable; the session and experiment views are built on it)
-------------------------------------------------------------------------
open_file(source) -> NWBReader
    A local path (str or os.PathLike), an http(s) URL (streamed, see
    :mod:`intake_vbo.transfer.streamfile`) or a binary file-like object.
NWBReader
    ``name``, ``closed``, ``close()`` (also a context manager), ``has(path)``, ``read(path)``,
    ``read_text(path)``, ``attrs(path)``, ``keys(path)``, ``kind(path)``, ``walk(path)``,
    ``require(path, what)``, ``h5`` (the h5py.File), ``nwbfile``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

import h5py
import numpy as np

from ..base.errors import VboError


def open_file(source: str | os.PathLike | BinaryIO, close_source: bool = False) -> NWBReader:
    """Open a VBO NWB file for reading; no dataset is read.

    Parameters
    ----------
    source : str, os.PathLike or binary file-like object
        A local path; an ``http(s)://...?versionId=...`` URL, streamed by HTTP Range
        requests through the block store of the cache (``VBO_CACHE_DIR``; with a
        known hash or another cache, pass ``intake_vbo.transfer.opener.open_url(url,
        file_hash, cache)`` instead); or an object with ``read``, ``seek`` and
        ``tell`` (h5py reads through it). The caller keeps ownership of a file-like
        object unless ``close_source``: closing the reader closes the HDF5 handle only.
    close_source : bool
        Close a file-like ``source`` with the reader (it then belongs to the reader).

    Returns
    -------
    NWBReader
        Owns the HDF5 handle until :meth:`NWBReader.close`.

    Raises
    ------
    VboError
        One line naming the file when it is missing, not HDF5, truncated, or not NWB.
    """
    owned = None  # the stream this reader closes
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        from ..transfer.opener import open_url  # requests loads only here

        source = open_url(source)
        owned = None if isinstance(source, os.PathLike) else source
        name = str(getattr(source, "name", source))
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise VboError(f"{name}: no such file")
    elif hasattr(source, "read") and hasattr(source, "seek"):
        name = str(getattr(source, "name", None) or repr(source))
        owned = source if close_source else None
    else:
        raise VboError(f"{source!r}: not a path or a binary file-like object")
    try:
        handle = h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        if owned is not None:
            owned.close()
        if isinstance(exc.__context__, VboError):  # a streamed read failed: say why
            raise exc.__context__ from None
        raise VboError(f"{name}: not a readable HDF5 file ({_first_line(exc)})") from None
    reader = NWBReader(handle, name, owned)
    if reader.attrs("/").get("neurodata_type") != "NWBFile":
        reader.close()
        raise VboError(f"{name}: an HDF5 file but not an NWB file")
    return reader


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _as_str(value: Any) -> Any:
    """An HDF5 attribute value with bytes decoded and 0-d arrays unwrapped."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return np.array([_as_str(v) for v in value.ravel()], dtype=object).reshape(value.shape)
    return value


class NWBReader:
    """An open NWB file: datasets and attributes by HDF5 path, and pynwb on demand.

    Parameters
    ----------
    handle : h5py.File
        The open file; the reader owns it and closes it.
    name : str
        How messages name the file (its path, or the file-like object's name).
    owned : file-like, optional
        A stream opened for this reader (a URL's), closed with it.

    Notes
    -----
    Every dataset read goes through :meth:`read` (or :meth:`read_text`, which calls it),
    so counting calls to ``read`` counts the datasets an attribute touches. Errors
    (a missing path, a damaged dataset, a closed file) are one-line `VboError` naming
    the file and the path.
    """

    def __init__(self, handle: h5py.File, name: str, owned: BinaryIO | None = None):
        self._h5 = handle
        self.name = name
        self._owned = owned
        self._io = None  # the pynwb NWBHDF5IO, made on first use of `nwbfile`
        self._nwbfile = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<NWBReader {self.name!r} ({state})>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the handle was closed under us)."""
        return self._h5 is None or not self._h5.id.valid

    @property
    def h5(self) -> h5py.File:
        """The open h5py.File (for readers that need h5py's own API)."""
        self._check_open("the file")
        return self._h5

    def close(self) -> None:
        """Close pynwb's IO (if made) and the HDF5 handle; safe to call twice."""
        io, self._io, self._nwbfile = self._io, None, None
        if io is not None:
            with contextlib.suppress(Exception):  # the handle below must close regardless
                io.close()
        handle, self._h5 = self._h5, None
        if handle is not None and handle.id.valid:
            handle.close()
        owned, self._owned = self._owned, None
        if owned is not None:
            owned.close()

    def __enter__(self) -> NWBReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _check_open(self, what: str) -> None:
        if self.closed:
            raise VboError(f"{self.name}: file is closed; cannot read {what}")

    def has(self, path: str) -> bool:
        """Whether a group or dataset exists at ``path``."""
        self._check_open(path)
        return path in self._h5

    def kind(self, path: str) -> str | None:
        """``"group"``, ``"dataset"`` or None when nothing is at ``path``."""
        if not self.has(path):
            return None
        return "group" if isinstance(self._h5[path], h5py.Group) else "dataset"

    def keys(self, path: str) -> list[str]:
        """The member names of the group at ``path`` (file order); [] if there is none."""
        if self.kind(path) != "group":
            return []
        return list(self._h5[path].keys())

    def require(self, path: str, what: str) -> None:
        """Raise a one-line VboError unless ``path`` exists: the file is not ``what``."""
        if not self.has(path):
            raise VboError(f"{self.name}: not {what} (no {path})")

    def _dataset(self, path: str) -> h5py.Dataset:
        self._check_open(path)
        node = self._h5.get(path)
        if not isinstance(node, h5py.Dataset):
            raise VboError(f"{self.name}: no dataset {path}")
        return node

    def read(self, path: str) -> Any:
        """The whole dataset at ``path`` in one h5py call (numpy array or scalar).

        Variable-length text comes back as h5py gives it (bytes objects); use
        :meth:`read_text` for text.
        """
        dataset = self._dataset(path)
        try:
            return dataset[()]
        except (OSError, RuntimeError, ValueError) as exc:
            raise VboError(f"{self.name}: cannot read {path} ({_first_line(exc)})") from None

    def read_text(self, path: str) -> Any:
        """The dataset at ``path`` as text: a ``str`` for a scalar, else an object array of str."""
        value = self.read(path)
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
            return _decode(value)
        return value

    def attrs(self, path: str) -> dict[str, Any]:
        """The HDF5 attributes at ``path`` as a dict, text decoded; {} if nothing is there."""
        if not self.has(path):
            return {}
        try:
            items = self._h5[path].attrs.items()
            return {key: _as_str(value) for key, value in items}
        except (OSError, RuntimeError) as exc:
            raise VboError(f"{self.name}: cannot read {path} ({_first_line(exc)})") from None

    def walk(self, path: str) -> Iterator[str]:
        """The full paths of the members of the group at ``path``."""
        for key in self.keys(path):
            yield f"{path.rstrip('/')}/{key}"

    @property
    def nwbfile(self):
        """The pynwb ``NWBFile`` over this handle, built on first access (slow: seconds).

        Uses the extension specs cached in the file; closed with the reader.
        """
        self._check_open("nwbfile")
        if self._nwbfile is None:
            from pynwb import NWBHDF5IO

            try:
                self._io = NWBHDF5IO(file=self._h5, mode="r", load_namespaces=True)
                self._nwbfile = self._io.read()
            except Exception as exc:
                raise VboError(f"{self.name}: pynwb cannot read it ({_first_line(exc)})") from None
        return self._nwbfile


def _decode(values: np.ndarray) -> np.ndarray:
    """An object array of bytes/str as an object array of str (vectorised where it can be)."""
    flat = values.ravel()
    if flat.size and isinstance(flat[0], bytes):
        try:
            decoded = np.char.decode(flat.astype(bytes), "utf-8").astype(object)
            return decoded.reshape(values.shape)
        except (TypeError, ValueError, UnicodeDecodeError):
            pass
    return np.array([_as_str(v) for v in flat], dtype=object).reshape(values.shape)

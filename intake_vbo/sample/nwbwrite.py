"""Small but real NWB files for the sample release, in the released layout.

Writing every file with pynwb costs about half a second each, so pynwb writes one
*template* per shape (kind, number of cells, passive or not, images or gratings;
``nwbtemplate``), and :func:`personalise` makes each file from a template in memory in
a few milliseconds: the file's values (``values.file_values``, seeded by its session,
id and revision) overwrite the template's raw bytes at the offsets h5py reports, or go
through h5py where a dataset is compressed or holds strings; groups named after the
image set and the rig are renamed, and the identity (ids, subject, dates, metadata and
task attributes) is rewritten. pynwb reads the result like any file it wrote.
"""

from __future__ import annotations

import io
import random
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from unittest import mock

import h5py
import numpy as np
from h5py import h5d, h5s

from . import session as S
from .extensions import cache_specs, type_map
from .fileinfo import AI148, EXPERIMENT, FileInfo, device, metadata_attributes, task_attributes
from .values import TEXT, file_values, is_passive, named

_STR = h5py.string_dtype()


@dataclass(frozen=True)
class Template:
    """A template file, the values it was written with and where its arrays lie."""

    data: bytes
    info: FileInfo
    values: dict  # path (with "{set}") -> array, as written
    # path -> (byte offset of its raw data, or -1 if not plainly stored; dtype; shape)
    arrays: dict[str, tuple[int, np.dtype, tuple[int, ...]]]


def template_key(info: FileInfo) -> tuple:
    """What a file's template depends on: kind, ROI count, passive, images or gratings."""
    return info.kind, len(info.cell_roi_ids), is_passive(info.session_type), info.image_set is None


@cache  # the same bytes every time: write each template once per process
def template(
    kind: str, n_cells: int = 0, passive: bool = False, gratings: bool = False
) -> Template:
    """Write one template NWB file with pynwb (extension specs cached, compressed).

    Parameters
    ----------
    kind : str
        ``"behavior_session"`` or ``"ophys_experiment"``.
    n_cells : int
        Number of (valid) ROIs of an experiment template (one of :data:`CELL_COUNTS`).
    passive, gratings : bool
        A passive session (no licks, no rewards); a gratings session (4 images).
    """
    from hdmf.build import BuildManager
    from pynwb import NWBHDF5IO

    from .nwbtemplate import build

    info = FileInfo(
        kind,
        1,
        "000000",
        f"Sst-IRES-Cre/wt;{AI148}/wt",
        "F",
        datetime(2019, 1, 1, tzinfo=timezone.utc),
        cell_roi_ids=tuple(range(1, 2 * n_cells, 2)),
        cell_specimen_ids=tuple(range(1, n_cells + 1)),
        behavior_session_id=1,
        image_set=None if gratings else "A",
        session_type="OPHYS_2_images_A_passive" if passive else "OPHYS_1_images_A",
        omissions=True,
    )
    values = file_values(info)
    set_name = S.image_set(info.image_set)[0]
    with _fixed_object_ids(str(template_key(info))), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynwb's notes on linked tables and data layout
        nwb = build(info, named(values, set_name), device(info.equipment_name))
        buffer = io.BytesIO()
        # HDF5 1.14's format keeps object headers compact (about half the size), and every
        # h5py from 3.10 on reads it; HDF5 2.0's "latest" (h5py 3.16) is unreadable before it.
        with (
            h5py.File(buffer, "w", libver=("v114", "v114")) as f,
            NWBHDF5IO(file=f, mode="w", manager=BuildManager(type_map())) as nwbio,
        ):
            nwbio.write(nwb, cache_spec=False)
    with h5py.File(buffer, "r+") as f:
        cache_specs(f)
    with h5py.File(buffer, "r") as f:
        arrays = {key: _locate(f, key.replace("{set}", set_name)) for key in values}
    return Template(buffer.getvalue(), info, values, arrays)


def _locate(f: h5py.File, name: str) -> tuple[int, np.dtype, tuple[int, ...]]:
    """Where the raw data of dataset ``name`` starts, if it is stored as plain bytes."""
    dataset = f[name]
    offset = dataset.id.get_offset()
    plain = not (dataset.compression or dataset.fletcher32 or dataset.shuffle)
    plain = plain and dataset.dtype.kind in "biuf"
    one_chunk = plain and dataset.chunks and dataset.ndim == 1 and dataset.id.get_num_chunks() == 1
    if offset is None and one_chunk:
        offset = dataset.id.get_chunk_info(0).byte_offset  # a 1-d chunk starts with its data
    return (-1 if offset is None or not plain else offset), dataset.dtype, dataset.shape


@contextmanager
def _fixed_object_ids(seed: str):
    """Make hdmf's random object ids (uuid4) reproducible: same template bytes every run."""
    rng = random.Random(seed)

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    with mock.patch("hdmf.container.uuid4", uuid4):
        yield


def personalise(template: Template, info: FileInfo) -> bytes:
    """Copy a template and make it the file of ``info``: identity, values and names.

    Returns
    -------
    bytes
        The new file, which pynwb reads with ``identifier == str(info.ident)``.
    """
    data = bytearray(template.data)
    later = []
    for key, values in file_values(info).items():
        before = template.values[key]
        if before.shape == values.shape and np.array_equal(
            before, values, equal_nan=before.dtype.kind == "f"
        ):
            continue
        offset, dtype, shape = template.arrays[key]
        array = np.asarray(values, dtype if dtype.kind != "O" else TEXT).reshape(shape)
        if offset >= 0:  # uncompressed raw data: overwriting its bytes is h5py's edit, faster
            data[offset : offset + array.nbytes] = array.tobytes()
        else:
            later.append((key, array))
    # h5py's file-object driver, not an HDF5 file image: before HDF5 2.0 (h5py 3.16) the image
    # of a file open for writing keeps a stale superblock checksum, and nothing opens it.
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as f:
        set_name = _rename(f, template.info, info)
        for key, values in later:
            _write(f, key.replace("{set}", set_name), values)
        _identity(f, info)
    return buffer.getvalue()


def _rename(f: h5py.File, old: FileInfo, new: FileInfo) -> str:
    """Rename the groups named after the image set and the rig; returns the set's name."""
    before, after = S.image_set(old.image_set)[0], S.image_set(new.image_set)[0]
    if before != after:
        f.move(f"intervals/{before}_presentations", f"intervals/{after}_presentations")
        table = f[f"intervals/{after}_presentations"]
        table.attrs["description"] = table.attrs["description"].replace(before, after)
        column = table["stimulus_name"]
        column[...] = np.full(column.shape, after, TEXT)
        for kind in ("templates", "presentation"):
            f.move(f"stimulus/{kind}/{before}", f"stimulus/{kind}/{after}")
        link = f"stimulus/presentation/{after}/indexed_timeseries"
        del f[link]
        f[link] = h5py.SoftLink(f"/stimulus/templates/{after}")
    if old.equipment_name != new.equipment_name:
        f.move(f"general/devices/{old.equipment_name}", f"general/devices/{new.equipment_name}")
        description, manufacturer = device(new.equipment_name)
        rig = f[f"general/devices/{new.equipment_name}"]
        rig.attrs["description"], rig.attrs["manufacturer"] = description, manufacturer
        if new.kind == EXPERIMENT:
            del f["general/optophysiology/imaging_plane_1/device"]
            link = h5py.SoftLink(f"/general/devices/{new.equipment_name}")
            f["general/optophysiology/imaging_plane_1/device"] = link
    return after


def _identity(f: h5py.File, info: FileInfo) -> None:
    """Rewrite the strings and attributes that say whose file this is."""
    from .nwbophys import plane_description
    from .nwbtemplate import experiment_description

    stamp = info.start.astimezone(timezone.utc).isoformat()
    texts = {
        "identifier": str(info.ident),
        "session_description": info.session_type,
        "session_start_time": stamp,
        "timestamps_reference_time": stamp,
        "general/experiment_description": experiment_description(info.session_type),
        "general/subject/subject_id": info.mouse_id,
        "general/subject/genotype": info.genotype,
        "general/subject/sex": info.sex,
        "general/subject/age": f"P{info.age_in_days}D",
    }
    if info.kind == EXPERIMENT:
        plane = "general/optophysiology/imaging_plane_1/"
        texts[plane + "description"] = plane_description(info)
        texts[plane + "location"] = info.targeted_structure
        texts[plane + "indicator"] = info.indicator
    for name, text in texts.items():
        _write(f, name, np.array(text, dtype=_STR))
    _write(f, "file_create_date", np.array([stamp], dtype=_STR))
    _attributes(
        f["general/subject"],
        {"driver_line": list(info.driver_line), "reporter_line": info.reporter_line},
    )
    _attributes(f["general/metadata"], metadata_attributes(info))
    _attributes(f["general/task_parameters"], task_attributes(info))
    rig = f["processing/eye_tracking_rig_metadata/eye_tracking_rig_metadata"]
    _attributes(rig, {"equipment": info.equipment_name})


def _attributes(obj, values: dict) -> None:
    """Overwrite attributes in place, keeping the dtypes hdmf gave them (int64, float64, text)."""
    for name, value in values.items():
        attr = h5py.h5a.open(obj.id, name.encode())
        if attr.shape != np.shape(value):  # a list of another length: make it anew
            attr.close()
            del obj.attrs[name]
            obj.attrs.create(name, value, dtype=_STR)
        else:
            kind = attr.dtype if attr.dtype.kind != "O" else _STR
            attr.write(np.array(value, dtype=kind))


def _write(f: h5py.File, name: str, values: np.ndarray) -> None:
    """Overwrite the whole dataset ``name`` with ``values`` of its shape (h5py's low level)."""
    dataset = h5d.open(f.id, name.encode())
    dataset.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(values))


def template_for(info: FileInfo) -> Template:
    """The template a file is made from."""
    kind, n_cells, passive, gratings = template_key(info)
    return template(kind, n_cells, passive, gratings)


def write(info: FileInfo) -> bytes:
    """The bytes of the NWB file of ``info``."""
    return personalise(template_for(info), info)

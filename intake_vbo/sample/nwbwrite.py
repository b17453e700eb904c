"""Small but real NWB files for the sample release.

Writing every file with pynwb costs about 0.1 s each, so pynwb writes one *template*
per kind (and per number of cells), and :func:`personalise` makes each file from a
template in memory, in about 2 ms: the data arrays (seeded by the file's id and
revision, so every file's bytes differ) overwrite the template's raw bytes at the
offsets h5py reports, and h5py rewrites the strings (identifier, session id, subject,
start time). pynwb reads the result like any file it wrote.
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

BEHAVIOR = "behavior_session"
EXPERIMENT = "ophys_experiment"
# Cells per experiment come from a few sizes so that one template serves each size.
CELL_COUNTS = (48, 64, 80, 96)
CELL_WEIGHTS = (0.25, 0.35, 0.25, 0.15)
_FRAMES = 300  # stimulus frames and running samples per file
_OPHYS_FRAMES = 32  # imaging frames per file (kept small: the arrays are n_cells x frames)
_IMAGE = 32  # side of the projection images
_FIXED_TIME = datetime(2019, 1, 1, tzinfo=timezone.utc)  # template dates: bytes are reproducible
_SEGMENTATION = "processing/ophys/image_segmentation/cell_specimen_table/"
_IMAGE_NAMES = ("max_projection", "average_image", "segmentation_mask_image")
_IMAGES = [f"processing/ophys/images/{name}" for name in _IMAGE_NAMES]
# The datasets personalise() rewrites.
_ARRAYS = {
    BEHAVIOR: [
        "processing/running/speed/data",
        "processing/rewards/volume/data",
        "intervals/trials/hit",
    ]
}
_ARRAYS[EXPERIMENT] = [
    *_ARRAYS[BEHAVIOR],
    *(_SEGMENTATION + column for column in ("id", "cell_specimen_id", "x", "y")),
    "processing/ophys/dff/traces/data",
    "processing/ophys/event_detection/data",
    *_IMAGES,
]


@dataclass(frozen=True)
class FileInfo:
    """What personalises one NWB file."""

    kind: str  # BEHAVIOR or EXPERIMENT
    ident: int  # behavior_session_id or ophys_experiment_id
    mouse_id: str
    genotype: str
    sex: str
    start: datetime
    revision: int = 0  # bumped when a release re-uploads the file with new content
    cell_roi_ids: tuple[int, ...] = ()
    cell_specimen_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Template:
    """A template file and where its personalised arrays lie in it."""

    data: bytes
    # dataset -> (byte offset of its raw data, or -1 if not plainly stored; dtype; shape)
    arrays: dict[str, tuple[int, np.dtype, tuple[int, ...]]]


@cache  # the same bytes every time: write each template once per process
def template(kind: str, n_cells: int = 0) -> Template:
    """Write one template NWB file with pynwb.

    Parameters
    ----------
    kind : str
        ``"behavior_session"`` or ``"ophys_experiment"``.
    n_cells : int
        Number of ROIs of an experiment template (one of :data:`CELL_COUNTS`).
    """
    from pynwb import NWBHDF5IO

    with _fixed_object_ids(f"{kind}/{n_cells}"), warnings.catch_warnings():
        # The ROI regions are linked before their series join the file; harmless.
        warnings.filterwarnings("ignore", "The linked table for DynamicTableRegion")
        nwb = _behavior_nwb()
        if kind == EXPERIMENT:
            _add_ophys(nwb, n_cells)
    buffer = io.BytesIO()
    # libver="latest" keeps HDF5 object headers compact: about half the size.
    with h5py.File(buffer, "w", libver="latest") as f, NWBHDF5IO(file=f, mode="w") as nwbio:
        nwbio.write(nwb, cache_spec=False)
    with h5py.File(buffer, "r") as f:
        arrays = {name: _locate(f, name) for name in _ARRAYS[kind]}
    return Template(buffer.getvalue(), arrays)


def _locate(f: h5py.File, name: str) -> tuple[int, np.dtype, tuple[int, ...]]:
    """Where the raw data of dataset ``name`` starts, if it is stored as plain bytes."""
    dataset = f[name]
    offset = dataset.id.get_offset()
    plain = not (dataset.compression or dataset.fletcher32 or dataset.shuffle)
    one_chunk = plain and dataset.chunks and dataset.ndim == 1 and dataset.id.get_num_chunks() == 1
    if offset is None and one_chunk:
        offset = dataset.id.get_chunk_info(0).byte_offset  # a 1-d chunk starts with its data
    return (-1 if offset is None else offset), dataset.dtype, dataset.shape


@contextmanager
def _fixed_object_ids(seed: str):
    """Make hdmf's random object ids (uuid4) reproducible: same template bytes every run."""
    rng = random.Random(seed)

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    with mock.patch("hdmf.container.uuid4", uuid4):
        yield


def personalise(template: Template, info: FileInfo) -> bytes:
    """Copy a template and make it the file of ``info``: ids, dates and data arrays.

    Returns
    -------
    bytes
        The new file, which pynwb reads with ``identifier == str(info.ident)``.
    """
    data = bytearray(template.data)
    rng = np.random.default_rng([info.ident, info.revision])
    later = []
    for name, values in _arrays(template.arrays, rng, info):
        offset, dtype, shape = template.arrays[name]
        array = np.asarray(values, dtype).reshape(shape)
        if offset >= 0:
            # Uncompressed raw data: overwriting its bytes is the edit h5py would make, faster.
            data[offset : offset + array.nbytes] = array.tobytes()
        else:
            later.append((name, array))
    buffer = io.BytesIO(data)
    stamp = info.start.astimezone(timezone.utc).isoformat()
    with h5py.File(buffer, "r+") as f:
        # Strings live in the global heap: h5py's low-level writes, quicker than f[name][()] = .
        for name, values in later:
            _write(f, name, values)
        for name, text in (
            ("identifier", str(info.ident)),
            ("general/session_id", str(info.ident)),
            ("general/subject/subject_id", info.mouse_id),
            ("general/subject/genotype", info.genotype),
            ("general/subject/sex", info.sex),
            ("session_start_time", stamp),
            ("timestamps_reference_time", stamp),
        ):
            _write(f, name, np.array(text, dtype=_STR))
    return buffer.getvalue()


_STR = h5py.string_dtype()


def _write(f: h5py.File, name: str, values: np.ndarray) -> None:
    """Overwrite the whole dataset ``name`` with ``values`` of its shape."""
    dataset = h5d.open(f.id, name.encode())
    dataset.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(values))


def _behavior_nwb():
    """An NWBFile with the groups both kinds of file share."""
    from pynwb import NWBFile, ProcessingModule, TimeSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject
    from pynwb.image import GrayscaleImage, Images

    nwb = NWBFile(
        session_description="Sample Visual Behavior session (intake-vbo sample release)",
        identifier="0",
        session_id="0",
        session_start_time=_FIXED_TIME,
        file_create_date=_FIXED_TIME,
        institution="Allen Institute for Brain Science (sample)",
    )
    nwb.subject = Subject(
        subject_id="000000",
        age="P100D",
        genotype="Sst-IRES-Cre/wt;Ai148(TIT2L-GC6f-ICL-tTA2)/wt",
        sex="F",
        species="Mus musculus",
    )
    t = np.arange(_FRAMES) / 60.0
    modules = {
        name: ProcessingModule(name=name, description=f"{name} data")
        for name in ("stimulus", "running", "licking", "rewards")
    }
    for module in modules.values():
        nwb.add_processing_module(module)
    modules["stimulus"].add(
        TimeSeries(name="timestamps", data=np.arange(_FRAMES), unit="frames", timestamps=t)
    )
    modules["running"].add(
        TimeSeries(name="speed", data=np.zeros(_FRAMES, "f4"), unit="cm/s", timestamps=t)
    )
    licks = np.linspace(0, t[-1], 40)
    modules["licking"].add(
        TimeSeries(name="licks", data=np.ones(40, "u1"), unit="lick", timestamps=licks)
    )
    rewards = np.linspace(0, t[-1], 12)
    modules["rewards"].add(
        TimeSeries(name="volume", data=np.full(12, 0.007, "f4"), unit="mL", timestamps=rewards)
    )
    modules["rewards"].add(
        TimeSeries(name="autorewarded", data=np.zeros(12, bool), unit="", timestamps=rewards)
    )
    nwb.add_trial_column("hit", "whether the mouse licked after a change")
    for i in range(24):
        nwb.add_trial(start_time=i * 0.4, stop_time=i * 0.4 + 0.35, hit=bool(i % 2))
    names = [f"im{i:03d}" for i in range(8)]
    presentations = TimeIntervals(
        name="Natural_Images_Lum_Matched_set_ophys_G_2019_presentations",
        description="image presentations",
    )
    presentations.add_column("image_name", "name of the image shown")
    for i in range(40):
        presentations.add_interval(
            start_time=i * 0.25, stop_time=i * 0.25 + 0.25, image_name=names[i % 8]
        )
    nwb.add_time_intervals(presentations)
    nwb.add_stimulus_template(
        Images(
            name="Natural_Images_Lum_Matched_set_ophys_G_2019",
            images=[GrayscaleImage(name=n, data=np.zeros((16, 16), "u1")) for n in names],
            description="stimulus images",
        )
    )
    return nwb


def _add_ophys(nwb, n_cells: int) -> None:
    """Add ``processing/ophys`` as an experiment file has it."""
    from pynwb.image import GrayscaleImage, Images
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    device = nwb.create_device(name="MESO.1", description="two-photon microscope")
    plane = nwb.create_imaging_plane(
        name="imaging_plane_1",
        optical_channel=OpticalChannel(
            name="channel_1", description="GCaMP", emission_lambda=520.0
        ),
        description="imaging plane",
        device=device,
        excitation_lambda=910.0,
        imaging_rate=11.0,
        indicator="GCaMP6f",
        location="VISp",
    )
    ophys = nwb.create_processing_module(name="ophys", description="optical physiology")
    segmentation = ImageSegmentation(name="image_segmentation")
    cells = segmentation.create_plane_segmentation(
        name="cell_specimen_table", description="segmented cells", imaging_plane=plane
    )
    for column in ("cell_specimen_id", "x", "y", "width", "height"):
        cells.add_column(column, column)
    cells.add_column("valid_roi", "whether the ROI is a cell")
    for i in range(n_cells):
        pixels = [(i % _IMAGE, j, 1.0) for j in range(4)]
        cells.add_roi(
            id=i, pixel_mask=pixels, cell_specimen_id=i, x=0, y=0, width=4, height=1, valid_roi=True
        )
    ophys.add(segmentation)
    rois = cells.create_roi_table_region(description="all cells", region=list(range(n_cells)))
    frames = np.arange(_OPHYS_FRAMES) / 11.0
    zeros = np.zeros((_OPHYS_FRAMES, n_cells), "f4")
    dff = DfOverF(name="dff")
    dff.create_roi_response_series(
        name="traces", data=zeros, rois=rois, unit="NA", timestamps=frames
    )
    ophys.add(dff)
    ophys.add(
        RoiResponseSeries(
            name="event_detection", data=zeros, rois=rois, unit="NA", timestamps=frames
        )
    )
    blank = np.zeros((_IMAGE, _IMAGE), "u1")
    ophys.add(
        Images(
            name="images",
            images=[GrayscaleImage(name=name, data=blank) for name in _IMAGE_NAMES],
            description="projection images",
        )
    )


def _arrays(arrays: dict, rng: np.random.Generator, info: FileInfo):
    """Yield ``(dataset, values)``: the file's own data, same shapes as the template's."""

    def shape(name: str) -> tuple[int, ...]:
        return arrays[name][2]

    speed = "processing/running/speed/data"
    yield speed, 20 * rng.random(shape(speed)) - 2
    volume = "processing/rewards/volume/data"
    yield volume, rng.choice([0.005, 0.007, 0.010], shape(volume))
    hit = "intervals/trials/hit"
    yield hit, rng.random(shape(hit)) < 0.6
    if info.kind != EXPERIMENT:
        return
    n = shape(_SEGMENTATION + "id")[0]
    if len(info.cell_roi_ids) == n:
        yield _SEGMENTATION + "id", info.cell_roi_ids
        yield _SEGMENTATION + "cell_specimen_id", info.cell_specimen_ids
    yield _SEGMENTATION + "x", rng.integers(0, _IMAGE - 4, n)
    yield _SEGMENTATION + "y", rng.integers(0, _IMAGE - 1, n)
    dff = rng.standard_normal(shape("processing/ophys/dff/traces/data")) * 0.1
    yield "processing/ophys/dff/traces/data", dff
    yield "processing/ophys/event_detection/data", np.where(dff > 0.15, dff, 0)
    for image in _IMAGES:
        yield image, rng.integers(0, 256, shape(image))

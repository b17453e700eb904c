"""The releases the ``fetch`` benchmarks download: small sample files and one large NWB file.

- :func:`small_release`: the generated sample release at scale 0.05 (three versions,
  about 300 NWB files of 45-110 KB each per version), cached in ``.sample-cache/``.
- :func:`large_release`: a one-version sample (1.1.0, scale 0.01) in a scratch
  directory, in which one ophys experiment's NWB file is replaced by a large real NWB
  file (pynwb, one ``TimeSeries`` of random bytes, uncompressed) before publishing, so
  the manifest, the catalog and AllenSDK all name it as any other file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from common import REPO

SMALL_SCALE = 0.05
BLOCK = 16 << 20  # one row of the random dataset
_EXPERIMENT = re.compile(r".*/behavior_ophys_experiment_(\d+)\.nwb")
_SESSION = re.compile(r".*/behavior_session_(\d+)\.nwb")


@dataclass(frozen=True)
class DataFile:
    """One NWB file of a version, as each tool names it."""

    file_id: str  # the manifest's data_files key (AllenSDK)
    key: str
    kind: str  # ophys_experiment or behavior_session (intake-vbo fetch)
    ident: int
    blake2b: str
    size: int


def small_release() -> Path:
    """The scale-0.05 sample release (generated once, then reused)."""
    from intake_vbo.sample.release import generate_release

    return generate_release(REPO / ".sample-cache" / f"scale-{SMALL_SCALE:g}", scale=SMALL_SCALE)


def data_files(release: Path, version: str) -> list[DataFile]:
    """Every NWB file of ``version``, in file_id order."""
    from intake_vbo.sample.release import load_layout

    layout = load_layout(release, version)
    found = []
    for file_id, key in sorted(layout["data_files"].items(), key=lambda item: int(item[0])):
        obj = layout["objects"][key]
        if match := _EXPERIMENT.fullmatch(key):
            kind = "ophys_experiment"
        else:
            match, kind = _SESSION.fullmatch(key), "behavior_session"
        found.append(DataFile(file_id, key, kind, int(match.group(1)), obj["blake2b"], obj["size"]))
    return found


def cli_selection(files: list[DataFile]) -> list[str]:
    """``intake-vbo fetch`` options naming exactly ``files``."""
    args = []
    for kind in ("ophys_experiment", "behavior_session"):
        ids = [str(f.ident) for f in files if f.kind == kind]
        if ids:
            args += [f"--{kind.replace('_', '-')}", *ids]
    return args


def large_release(out: Path, size: int) -> tuple[Path, DataFile]:
    """A one-version release in ``out`` whose first ophys experiment file is ``size`` bytes.

    Returns
    -------
    release, large
        The release directory (for :func:`intake_vbo.sample.s3.publish`) and the large file.
    """
    from intake_vbo.sample.release import generate_release, load_layout, object_path

    version = "1.1.0"
    release = generate_release(out / "release", versions=(version,), scale=0.01)
    first = next(f for f in data_files(release, version) if f.kind == "ophys_experiment")
    scratch = out / "large.nwb"
    write_large_nwb(scratch, size)
    digest, size = _blake2b(scratch), scratch.stat().st_size
    scratch.replace(object_path(release, digest))
    layout = load_layout(release, version)
    layout["objects"][first.key] = {"blake2b": digest, "size": size}
    (release / version / "layout.json").write_text(json.dumps(layout, indent=1))
    large = next(f for f in data_files(release, version) if f.file_id == first.file_id)
    return release, large


def write_large_nwb(path: Path, size: int, seed: int = 0) -> None:
    """A real NWB file of about ``size`` bytes: random ``uint8`` rows, written as streamed.

    Random bytes do not compress, and rows of :data:`BLOCK` bytes keep memory small.
    """
    import numpy as np
    from hdmf.data_utils import DataChunkIterator
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    rng = np.random.default_rng(seed)
    rows = (np.frombuffer(rng.bytes(BLOCK), np.uint8) for _ in range(max(1, size // BLOCK)))
    data = DataChunkIterator(rows, maxshape=(None, BLOCK), dtype=np.dtype("uint8"), buffer_size=1)
    nwb = NWBFile(
        session_description="intake-vbo download benchmark: random bytes",
        identifier=f"vbo-bench-large-{seed}",
        session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
    )
    nwb.add_acquisition(TimeSeries(name="random", data=data, unit="n/a", rate=1.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def _blake2b(path: Path) -> str:
    digest = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

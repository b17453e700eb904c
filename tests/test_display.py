"""Notebook manners: reprs of the views and the project cache, ids as integers, the PNG encoder.

PNGs are decoded here with zlib and struct alone (chunk CRCs, header, scanlines), so the
encoder is checked against the format, not against itself. The views' reprs are held to
being cheap: every dataset they read is recorded (``NWBReader.read`` is the one door to a
dataset) and must be the max projection or a scalar of the metadata.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import zlib

import h5py
import numpy as np
import pandas as pd
import pytest
from reads import count_reads
from shared import FIXTURES

from intake_vbo.base.display import (
    format_value,
    html_table,
    integer_ids,
    png_bytes,
    png_size,
    text_line,
    thumbnail,
)
from intake_vbo.nwb.experiment import open_experiment
from intake_vbo.nwb.session import open_session

EXPERIMENT = FIXTURES / "behavior_ophys_experiment_900000013.nwb"
SESSION = FIXTURES / "behavior_session_800000012.nwb"
MAX_PROJECTION = "processing/ophys/images/max_projection"
TABLE = "processing/ophys/image_segmentation/cell_specimen_table"

needs_fixtures = pytest.mark.skipif(
    not EXPERIMENT.is_file(), reason=f"no NWB fixtures at {FIXTURES}"
)


def decode_png(png: bytes) -> np.ndarray:
    """The pixels of an 8-bit grey or RGB PNG with unfiltered scanlines, checking every CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, []
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        at += 12 + length
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, color, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and color in (0, 2)
    channels = 3 if color == 2 else 1
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    lines = np.frombuffer(raw, np.uint8).reshape(height, 1 + width * channels)
    assert not lines[:, 0].any()  # filter type 0 on every scanline
    pixels = lines[:, 1:]
    return pixels.reshape(height, width, 3) if channels == 3 else pixels


def html_png(page: str) -> bytes:
    """The one inline PNG of an HTML page."""
    (uri,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    return base64.b64decode(uri)


def shows(page: str, name: str, value) -> re.Match | None:
    """Whether an HTML table of ours has the row ``name | value``."""
    return re.search(rf">{re.escape(name)}</th><td[^>]*>{re.escape(str(value))}</td>", page)


# -- the PNG encoder and thumbnails -------------------------------------------------------


def test_png_of_grey_and_rgb_pixels_decodes_to_the_same_pixels():
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    rgb = rng.integers(0, 256, (20, 11, 3), dtype=np.uint8)
    for pixels in (grey, rgb):
        png = png_bytes(pixels)
        assert png_size(png) == (pixels.shape[1], pixels.shape[0])
        np.testing.assert_array_equal(decode_png(png), pixels)


def test_png_refuses_what_it_cannot_encode():
    with pytest.raises(ValueError, match="grey"):
        png_bytes(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


def test_thumbnail_shrinks_by_whole_blocks_and_stretches_contrast():
    image = np.arange(512 * 512, dtype=np.float32).reshape(512, 512)
    small = thumbnail(image)
    assert small.dtype == np.uint8 and small.shape == (170, 170)  # 512 // 3: at most 192
    assert small[0, 0] == 0 and small[-1, -1] == 255 and np.all(np.diff(small[:, 0]) >= 0)
    hot = np.zeros((64, 64))
    hot[10:20, 10:20], hot[0, 0] = 1.0, 1e6  # one bright pixel must not grey the rest
    shown = thumbnail(hot)
    assert shown.shape == (64, 64) and shown[15, 15] == 255 and shown[40, 40] == 0
    assert thumbnail(np.full((8, 8), np.nan)).max() == 0
    with pytest.raises(ValueError, match="2-D"):
        thumbnail(np.zeros(5))


# -- ids and values as text ----------------------------------------------------------------


def test_values_are_written_as_people_read_them():
    assert format_value("cell_specimen_id", 1.086000004e9) == "1086000004"
    assert format_value("cell_specimen_id", np.float64("nan")) == "NaN"
    assert format_value("ophys_container_id", [np.int64(1), 2.0]) == "[1, 2]"
    assert format_value("ophys_frame_rate", 31.0) == "31"
    assert format_value("x", 0.123456789) == "0.123457"
    assert format_value("x", None) == "None" and format_value("x", np.bool_(True)) == "True"
    stamp = pd.Timestamp("2019-09-20 09:45:29", tz="UTC")
    assert format_value("date_of_acquisition", stamp) == "2019-09-20 09:45:29+00:00"


def test_integer_ids_prints_float_ids_as_integers_and_changes_nothing():
    ids = pd.Index([1086000004.0, np.nan, 1086000010.0], name="cell_specimen_id")
    frame = pd.DataFrame(
        {"cell_roi_id": [1080000001, 1080000003, 1080000005], "ophys_experiment_id": [9e8] * 3,
         "dff": [0.5, 0.25, 1.5e9]},  # a float that is no id stays a float
        index=ids,
    )  # fmt: skip
    assert "e+09" in str(frame)  # what pandas prints by itself
    shown = integer_ids(frame)
    text = str(shown)
    assert "1086000004" in text and "1086000010" in text and "<NA>" in text
    assert "900000000" in text and "1.086" not in text
    assert shown.index.dtype == "Int64" and shown["ophys_experiment_id"].dtype == "Int64"
    assert shown["dff"].dtype == np.float64 and shown["dff"].iloc[2] == 1.5e9
    assert frame.index.dtype == np.float64 and frame["ophys_experiment_id"].dtype == np.float64
    assert integer_ids(frame.reset_index().set_index(["cell_specimen_id", "cell_roi_id"])).index[
        0
    ] == (1086000004, 1080000001)
    series = integer_ids(frame["ophys_experiment_id"])
    assert series.dtype == "Int64" and series.index.dtype == "Int64"
    fractional = pd.DataFrame({"x": [1]}, pd.Index([0.5], name="trials_id"))
    assert integer_ids(fractional).index.dtype == np.float64  # not whole: left as it is


def test_html_table_escapes_and_text_line_names_each_value():
    page = html_table("A <b> & c", [("name", "<script>"), ("ophys_experiment_id", 9.5e8)])
    assert "<script>" not in page and "&lt;script&gt;" in page and "A &lt;b&gt; &amp; c" in page
    assert "950000000" in page
    assert text_line("X", [("a", 1.0), ("b", "z")]) == "<X: a=1, b=z>"
    assert text_line("X", []) == "<X>"


# -- the views' reprs ---------------------------------------------------------------------


@needs_fixtures
def test_experiment_html_shows_metadata_and_a_valid_thumbnail(monkeypatch):
    reads = count_reads(monkeypatch)
    with open_experiment(EXPERIMENT) as exp:
        page = exp._repr_html_()
        meta = exp.metadata
        image = exp.max_projection.data
    assert "<b>BehaviorOphysExperiment 900000013</b>" in page
    for key in ("ophys_experiment_id", "ophys_session_id", "behavior_session_id", "mouse_id",
                "cre_line", "session_type", "targeted_structure", "imaging_depth"):  # fmt: skip
        assert shows(page, key, format_value(key, meta[key]))
    assert shows(page, "ophys_session_id", int(meta["ophys_session_id"]))  # ids as integers
    with h5py.File(EXPERIMENT, "r") as f:
        rois, frames = f[f"{TABLE}/id"].shape[0], f["processing/ophys/dff/traces/data"].shape[0]
        trials = f["intervals/trials/id"].shape[0]
        big = {path for path in reads if f[path].size > 1}
    assert shows(page, "ROIs in file", rois)
    assert shows(page, "ophys frames", frames)
    assert shows(page, "trials", trials)
    png = html_png(page)
    pixels = decode_png(png)
    assert pixels.shape == image.shape == (64, 64)
    assert pixels.min() == 0 and pixels.max() == 255  # stretched, not raw values
    # cheap: the image is the one dataset read that is more than a scalar, and read once
    assert big == {MAX_PROJECTION} and reads.count(MAX_PROJECTION) == 1


@needs_fixtures
def test_repr_reads_no_data_at_all(monkeypatch):
    reads = count_reads(monkeypatch)
    with open_experiment(EXPERIMENT) as exp:
        line = repr(exp)
        assert set(exp._cache) == {"metadata", "_multiplane"}  # no image, no table
    with h5py.File(EXPERIMENT, "r") as f:
        assert all(f[path].size == 1 for path in reads), reads
    assert line.startswith("<BehaviorOphysExperiment 900000013: mouse_id=400013, ")
    assert "cre_line=Sst-IRES-Cre" in line and "imaging_depth=150" in line
    assert line.endswith(f"file={EXPERIMENT}, state=open>")


@needs_fixtures
def test_session_html_has_no_picture_and_reads_no_data(monkeypatch):
    reads = count_reads(monkeypatch)
    with open_session(SESSION) as ses:
        page = ses._repr_html_()
        line = repr(ses)
    with h5py.File(SESSION, "r") as f:
        assert all(f[path].size == 1 for path in reads), reads
    assert "<img" not in page and "<b>BehaviorSession 800000012</b>" in page
    assert ">mouse_id</th>" in page and ">ophys_experiment_id</th>" not in page
    assert line.startswith("<BehaviorSession 800000012: mouse_id=400012, session_type=")
    assert "state=closed>" in repr(ses)  # what was read stays shown after close


@needs_fixtures
def test_closed_unread_view_shows_its_name_and_state():
    exp = open_experiment(EXPERIMENT)
    exp.close()
    page = exp._repr_html_()
    assert "<img" not in page and "<b>BehaviorOphysExperiment</b>" in page
    assert f">{EXPERIMENT}</td>" in page and ">closed</td>" in page
    assert repr(exp) == f"<BehaviorOphysExperiment: file={EXPERIMENT}, state=closed>"


@needs_fixtures
def test_float_specimen_ids_print_as_integers(tmp_path):
    path = tmp_path / EXPERIMENT.name
    shutil.copyfile(EXPERIMENT, path)
    with h5py.File(path, "r+") as f:
        f[f"{TABLE}/cell_specimen_id"][1] = -1  # AllenSDK: NaN, so the index is float64
    with open_experiment(path) as exp:
        dff = exp.dff_traces
        assert dff.index.dtype == np.float64  # the value stays AllenSDK's
        text = str(integer_ids(dff))
    first = int(dff.index[0])
    assert re.search(rf"^{first}\s+\d+\s+\[", text, re.MULTILINE)
    assert "e+09" not in text and "e+09" in str(dff)


# -- the project cache's repr ---------------------------------------------------------------


def test_project_cache_html_shows_manifests_and_counts(catalog_dir):
    from intake_vbo.catalog.index import connect
    from intake_vbo.projectcache import VisualBehaviorOphysProjectCache

    cache = VisualBehaviorOphysProjectCache.from_catalog(catalog_dir)
    page = cache._repr_html_()
    version = cache.current_manifest()
    assert "<b>VisualBehaviorOphysProjectCache</b>" in page
    assert shows(page, "current manifest", version)
    built = [re.search(r"_v(.+)\.json", n).group(1) for n in cache.list_all_downloaded_manifests()]
    assert shows(page, "versions built", ", ".join(built))
    number = re.search(r"_v(\d+\.\d+\.\d+)\.json", version).group(1)
    con = connect(catalog_dir)
    try:
        for table, label in (("ophys_experiments", "ophys experiments"), ("files", "NWB files"),
                             ("behavior_sessions", "behavior sessions")):  # fmt: skip
            (rows,) = con.execute(
                f"SELECT count(*) FROM {table} WHERE manifest_version = ?", [number]
            ).fetchone()
            assert rows > 0 and shows(page, label, rows)
    finally:
        con.close()
    assert "versions released" not in page  # not listed yet: a repr asks no server
    cache.list_manifest_file_names()
    assert shows(cache._repr_html_(), "versions released", ", ".join(built))
    line = repr(cache)
    assert line.startswith(f"<VisualBehaviorOphysProjectCache: current manifest={version}, ")
    assert f"catalog={catalog_dir}" in line

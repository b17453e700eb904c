"""intake_vbo.nwb.file: opening VBO NWB files by path or file-like object, and bad files."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from shared import FIXTURES

from intake_vbo.base.errors import VboError
from intake_vbo.nwb import open_experiment, open_session
from intake_vbo.nwb.file import NWBReader, open_file

SESSION = FIXTURES / "behavior_session_800000012.nwb"
EXPERIMENT = FIXTURES / "behavior_ophys_experiment_900000013.nwb"
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not SESSION.is_file(), reason=f"no NWB fixtures at {FIXTURES}")


def one_line_naming(exc: pytest.ExceptionInfo, name: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert name in message


def test_open_path_reads_by_hdf5_path():
    reader = open_file(SESSION)
    try:
        assert isinstance(reader, NWBReader) and not reader.closed
        assert reader.name == str(SESSION)
        assert reader.has("processing/stimulus/timestamps")
        assert not reader.has("processing/ophys")
        assert reader.kind("intervals") == "group"
        assert reader.kind("identifier") == "dataset"
        assert reader.read_text("identifier") == "800000012"
        stamps = reader.read("processing/stimulus/timestamps/timestamps")
        assert stamps.dtype == np.float64 and stamps.shape == (3000,)
        assert reader.attrs("general/metadata")["behavior_session_id"] == 800000012
        assert reader.attrs("no/such/group") == {}
        assert "trials" in reader.keys("intervals")
        names = reader.read_text("intervals/trials/initial_image_name")
        assert names.dtype == object and all(isinstance(n, str) for n in names)
    finally:
        reader.close()
    assert reader.closed


def test_missing_dataset_is_one_line_error():
    with open_file(SESSION) as reader:
        with pytest.raises(VboError) as exc:
            reader.read("processing/no_such_thing/data")
        one_line_naming(exc, str(SESSION))


def test_open_binary_file_like_objects():
    data = SESSION.read_bytes()
    reader = open_file(io.BytesIO(data))
    try:
        assert reader.read_text("identifier") == "800000012"
    finally:
        reader.close()
    with open(SESSION, "rb") as handle:
        reader = open_file(handle)
        assert reader.name == str(SESSION)  # a real file object lends its name
        assert reader.read("processing/licking/licks/data").size == 21
        reader.close()
        assert not handle.closed  # the caller's object stays the caller's


def test_reader_after_close_is_one_line_error():
    reader = open_file(SESSION)
    reader.close()
    reader.close()  # twice is fine
    with pytest.raises(VboError) as exc:
        reader.read("identifier")
    one_line_naming(exc, str(SESSION))
    assert "closed" in str(exc.value)


def test_nwbfile_is_pynwb_and_closes_with_the_reader():
    reader = open_file(SESSION)
    nwbfile = reader.nwbfile
    assert nwbfile.identifier == "800000012"
    assert reader.nwbfile is nwbfile  # built once
    assert "licking" in nwbfile.processing
    reader.close()
    assert reader.closed
    with pytest.raises(VboError):
        _ = reader.nwbfile


def test_importing_file_module_is_light():
    code = (
        "import sys, intake_vbo.nwb.file, intake_vbo.nwb.session, intake_vbo.nwb; "
        "heavy = [m for m in ('pandas', 'pynwb', 'hdmf', 'scipy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_reading_timestamps_imports_neither_pandas_nor_pynwb():
    code = (
        "import sys; from intake_vbo.nwb import open_session; "
        f"s = open_session({str(SESSION)!r}); n = s.stimulus_timestamps.size; s.close(); "
        "print(n, 'pandas' in sys.modules, 'pynwb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3000", "False", "False"]


# -- bad files: each a one-line VboError naming the file ----------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.nwb"
    with pytest.raises(VboError) as exc:
        open_session(path)
    one_line_naming(exc, str(path))


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.nwb"
    path.write_text("this is not an HDF5 file\n" * 20)
    with pytest.raises(VboError) as exc:
        open_session(path)
    one_line_naming(exc, str(path))
    assert "HDF5" in str(exc.value)


def test_truncated(tmp_path):
    path = tmp_path / "truncated.nwb"
    path.write_bytes(SESSION.read_bytes()[: SESSION.stat().st_size // 2])
    with pytest.raises(VboError) as exc:
        open_session(path)
    one_line_naming(exc, str(path))


def test_truncated_file_like():
    data = io.BytesIO(SESSION.read_bytes()[:4096])
    with pytest.raises(VboError) as exc:
        open_session(data)
    assert "\n" not in str(exc.value) and "BytesIO" in str(exc.value)


def test_hdf5_but_not_nwb(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(VboError) as exc:
        open_session(path)
    one_line_naming(exc, str(path))
    assert "not an NWB file" in str(exc.value)


def test_nwb_but_not_visual_behavior(tmp_path):
    path = tmp_path / "other.nwb"
    shutil.copyfile(SESSION, path)
    with h5py.File(path, "r+") as f:
        del f["general/metadata"]
    with pytest.raises(VboError) as exc:
        open_session(path)
    one_line_naming(exc, str(path))
    assert "Visual Behavior" in str(exc.value)


def test_not_a_source():
    with pytest.raises(VboError) as exc:
        open_session(12345)
    assert "\n" not in str(exc.value) and "12345" in str(exc.value)


def test_behavior_file_given_to_experiment_opener():
    with pytest.raises(VboError) as exc:
        open_experiment(SESSION)
    one_line_naming(exc, str(SESSION))
    assert "ophys" in str(exc.value)


def test_failed_open_closes_the_file(tmp_path, monkeypatch):
    opened: list[NWBReader] = []
    real_init = NWBReader.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(NWBReader, "__init__", spy)
    with pytest.raises(VboError):
        open_experiment(SESSION)
    assert len(opened) == 1 and opened[0].closed


def test_experiment_file_opens_as_a_session():
    with open_session(EXPERIMENT) as ses:
        assert ses.behavior_session_id == 800000013
        assert type(ses).__name__ == "BehaviorSession"

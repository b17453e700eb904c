"""Read-only copies of the release (a mounted bucket, a data asset, an AllenSDK cache).

The copies are the sample release written on disk and made read-only for real (a
read-only bind mount when the tests run as root, else no write permission); every test
that reads one proves, from a snapshot of its tree, that nothing was written under it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import intake
import pytest
from conftest import tree

from intake_vbo import VisualBehaviorOphysProjectCache
from intake_vbo.base.errors import VboError
from intake_vbo.catalog import localcopy
from intake_vbo.catalog.origin import bucket_url
from intake_vbo.catalog.release import manifest_name
from intake_vbo.cli import main
from intake_vbo.sample.copies import write_bucket_copy
from intake_vbo.sample.release import SAMPLE_VERSIONS, load_layout
from intake_vbo.transfer.inplace import RECORDS, hdf5_end, open_in_place

NAMES = [manifest_name(v) for v in SAMPLE_VERSIONS]
LATEST = SAMPLE_VERSIONS[-1]


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch):
    monkeypatch.delenv("VBO_BUCKET_URL", raising=False)
    monkeypatch.delenv("VBO_CACHE_DIR", raising=False)
    monkeypatch.delenv("VBO_VERIFY_ON_OPEN", raising=False)


def open_static(copy, work):
    return VisualBehaviorOphysProjectCache.from_local_cache(copy, use_static_cache=True,
                                                            work_dir=work)  # fmt: skip


def test_the_copy_is_really_read_only(bucket_copy):
    with pytest.raises(OSError):
        (bucket_copy / "written").write_text("x")


@pytest.mark.parametrize("spelling", ["path", "file-url"])
def test_a_bucket_url_may_be_a_local_directory(bucket_copy, spelling):
    given = str(bucket_copy) if spelling == "path" else bucket_copy.as_uri()
    assert bucket_url(given) == bucket_copy.as_uri() + "/"
    with pytest.raises(VboError, match="expected http"):
        bucket_url("ftp://example.org/vbo/")


def test_static_cache_serves_the_copy_in_place_and_writes_nothing_under_it(bucket_copy, tmp_path):
    before = tree(bucket_copy)
    cache = open_static(bucket_copy, tmp_path)
    assert cache.list_manifest_file_names() == NAMES  # every manifest, not only the latest
    assert cache.current_manifest() == NAMES[-1]
    assert cache.catalog_dir.is_relative_to(tmp_path)
    experiments = cache.get_ophys_experiment_table()
    ident = int(experiments.index[0])
    experiment = cache.get_behavior_ophys_experiment(ophys_experiment_id=ident)
    assert experiment.ophys_experiment_id == ident
    assert experiment.max_projection.data.ndim == 2
    session = cache.get_behavior_session(int(cache.get_behavior_session_table().index[0]))
    assert len(session.list_data_attributes_and_methods()) == 16
    assert not list(tmp_path.rglob("*.nwb"))  # opened in place, never copied
    assert tree(bucket_copy) == before


def test_an_older_version_whose_csvs_changed_is_a_one_line_error(bucket_copy, tmp_path):
    cache = open_static(bucket_copy, tmp_path)
    with pytest.raises(VboError, match="changed since") as caught:
        cache.load_manifest(NAMES[0])
    assert "\n" not in str(caught.value) and "release 0.3.0 cannot load" in str(caught.value)
    with pytest.raises(VboError, match="changed since"):
        cache.compare_manifests(NAMES[0], NAMES[-1])
    assert cache.current_manifest() == NAMES[-1]


def test_an_older_nwb_whose_key_holds_a_newer_upload_is_refused(bucket_copy, sample_release):
    old, new = (load_layout(sample_release, v)["objects"] for v in ("1.0.0", LATEST))
    key = next(k for k in old if k.endswith(".nwb") and new.get(k, old[k]) != old[k])
    with pytest.raises(VboError, match=f"holds the upload of release {LATEST}"):
        localcopy.data_path(bucket_copy, key, "1.0.0", old[key]["blake2b"])
    assert localcopy.data_path(bucket_copy, key, LATEST, new[key]["blake2b"]).is_file()


def test_allensdk_cache_mode_serves_every_version_it_holds(allensdk_copy, tmp_path):
    before = tree(allensdk_copy)
    with pytest.warns(UserWarning, match="last used here"):  # its _manifest_last_used.txt
        cache = VisualBehaviorOphysProjectCache.from_local_cache(allensdk_copy, work_dir=tmp_path)
    assert cache.current_manifest() == manifest_name("1.0.0")
    cache.load_manifest(NAMES[0])  # every version's own files are there: it loads
    text = cache.compare_manifests(NAMES[0], NAMES[-1])
    assert text.startswith("Changes going from") and "changed" in text
    experiments = cache.get_ophys_experiment_table()
    experiment = cache.get_behavior_ophys_experiment(int(experiments.index[-1]))
    assert experiment.max_projection.data.ndim == 2  # through AllenSDK's symlinks too
    assert tree(allensdk_copy) == before  # the copy's last-used record untouched
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = VisualBehaviorOphysProjectCache.from_local_cache(allensdk_copy, work_dir=tmp_path)
    assert again.current_manifest() == NAMES[0]  # remembered in the work directory


def test_two_copies_never_share_a_catalog(bucket_copy, allensdk_copy, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = open_static(bucket_copy, tmp_path)
        second = VisualBehaviorOphysProjectCache.from_local_cache(allensdk_copy, work_dir=tmp_path)
    assert first.catalog_dir != second.catalog_dir
    assert open_static(bucket_copy, tmp_path).catalog_dir == first.catalog_dir


def test_the_wrong_mode_for_a_layout_is_a_one_line_error(bucket_copy, allensdk_copy, tmp_path):
    with pytest.raises(VboError, match="use_static_cache=True"):
        VisualBehaviorOphysProjectCache.from_local_cache(bucket_copy, work_dir=tmp_path)
    with pytest.raises(VboError, match="use_static_cache=False"):
        open_static(allensdk_copy, tmp_path)
    with pytest.raises(VboError, match="not a copy of the release"):
        open_static(tmp_path, tmp_path)


def test_the_catalog_goes_to_vbo_cache_dir_without_a_work_dir(bucket_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("VBO_CACHE_DIR", str(tmp_path))
    cache = VisualBehaviorOphysProjectCache.from_local_cache(bucket_copy, use_static_cache=True)
    assert cache.catalog_dir.is_relative_to(tmp_path / "copies")


def partial_copy(sample_release, where, **kwargs):
    """A writable bucket-layout copy of the latest version, for tests that damage it."""
    return write_bucket_copy(sample_release, where, versions=[LATEST], **kwargs)


def first_experiment_key(sample_release) -> str:
    layout = load_layout(sample_release, LATEST)
    return min(k for k in layout["objects"] if "behavior_ophys_experiment_" in k)


def experiment_id(key: str) -> int:
    return int(key.rsplit("_", 1)[1].split(".")[0])


def test_a_file_the_copy_lacks_is_a_one_line_error_saying_how_to_get_it(sample_release, tmp_path):
    key = first_experiment_key(sample_release)
    copy = partial_copy(sample_release, tmp_path / "copy", omit=[key])
    cache = open_static(copy, tmp_path / "work")
    with pytest.raises(VboError, match="not on the copy") as caught:
        cache.get_behavior_ophys_experiment(experiment_id(key))
    message = str(caught.value)
    assert str(copy / key) in message and "from_s3_cache" in message and "\n" not in message


def test_a_truncated_copy_is_caught_at_open_without_hashing(sample_release, tmp_path):
    key = first_experiment_key(sample_release)
    copy = partial_copy(sample_release, tmp_path / "copy")
    path = copy / key
    with open(path, "rb") as f:
        assert hdf5_end(f) == path.stat().st_size  # the superblock's end of file
    os.truncate(path, path.stat().st_size - 1000)
    cache = open_static(copy, tmp_path / "work")
    with pytest.raises(VboError, match="truncated copy"):
        cache.get_behavior_ophys_experiment(experiment_id(key))


def test_verify_on_open_hashes_once_and_remembers(sample_release, tmp_path, monkeypatch):
    key = first_experiment_key(sample_release)
    copy = partial_copy(sample_release, tmp_path / "copy")
    path, records = copy / key, tmp_path / "records"
    digest = load_layout(sample_release, LATEST)["objects"][key]["blake2b"]
    flipped = bytearray(path.read_bytes())
    flipped[-1] ^= 0xFF
    assert open_in_place(path, "0" * 128, records) == path  # unasked: no hash at all
    monkeypatch.setenv("VBO_VERIFY_ON_OPEN", "1")
    assert open_in_place(path, digest, records) == path
    (record,) = (records / RECORDS).iterdir()
    # The same size and mtime: remembered, not hashed again (so the flip goes unseen) ...
    info = path.stat()
    path.write_bytes(bytes(flipped))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert open_in_place(path, digest, records) == path
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))  # ... a new mtime is
    with pytest.raises(VboError, match="does not match the manifest"):
        open_in_place(path, digest, records)
    assert record.is_file()


def build_from_copy(copy, out, *extra) -> int:
    return main(["build", "--out", str(out), "--bucket-url", str(copy), *extra])


def test_build_fetch_and_verify_on_a_copy_never_touch_it(bucket_copy, tmp_path, capsys):
    before = tree(bucket_copy)
    out = tmp_path / "catalog"
    assert main(["versions", "--bucket-url", bucket_copy.as_uri()]) == 0
    assert capsys.readouterr().out.split() == [*SAMPLE_VERSIONS, "(latest)"]
    assert build_from_copy(bucket_copy, out, "--versions", "all") == 2  # older CSVs changed
    assert "changed since" in capsys.readouterr().err
    assert build_from_copy(bucket_copy, out, "--versions", LATEST, "--cache-dir",
                           str(tmp_path / "cache")) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["fetch", "--catalog", str(out), "--version", "latest", "--all"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("in place ") and "failed 0" in said
    assert main(["verify", "--catalog", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"copy {bucket_copy}:" in said and " 0 damaged" in said
    assert tree(bucket_copy) == before


def test_verify_reports_a_damaged_file_on_a_copy_and_leaves_it(sample_release, tmp_path, capsys):
    key = first_experiment_key(sample_release)
    copy = partial_copy(sample_release, tmp_path / "copy")
    out = tmp_path / "catalog"
    assert build_from_copy(copy, out, "--cache-dir", str(tmp_path / "cache")) == 0
    data = bytearray((copy / key).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / key).write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", "--catalog", str(out), "--repair"]) == 2
    said = capsys.readouterr().out
    assert f"damaged on the copy: {copy / key}" in said and "leaves it alone" in said
    assert (copy / key).read_bytes() == bytes(data)


def test_intake_sources_of_a_copy_read_in_place(bucket_copy, tmp_path, sample_release):
    out = tmp_path / "catalog"
    assert build_from_copy(bucket_copy, out, "--versions", LATEST) == 0
    key = first_experiment_key(sample_release)
    src = intake.open_catalog(str(out / "catalog.yaml")).latest.ophys_experiment(
        ophys_experiment_id=experiment_id(key)
    )
    assert src.fetch() == str(bucket_copy / key)
    meta = src.discover()["metadata"]
    assert meta["in_place"] and meta["path"] == str(bucket_copy / key)
    with src.read() as experiment:
        assert experiment.max_projection.data.ndim == 2
    tables = intake.open_catalog(str(out / "catalog.yaml")).latest.ophys_experiment_tables(
        table="trials", ophys_experiment_ids=[experiment_id(key)]
    )
    assert tables.discover()["metadata"]["cached"] == 1  # on the copy, in place
    trials = tables.to_dask().compute()  # a task opens the copy's file where it lies
    assert len(trials) > 0 and set(trials.ophys_experiment_id) == {experiment_id(key)}


def test_a_second_process_opens_the_built_catalog_of_a_copy(bucket_copy, tmp_path):
    open_static(bucket_copy, tmp_path)
    script = (
        "from intake_vbo import VisualBehaviorOphysProjectCache as C\n"
        f"c = C.from_local_cache({str(bucket_copy)!r}, use_static_cache=True, "
        f"work_dir={str(tmp_path)!r})\n"
        "e = c.get_behavior_ophys_experiment(int(c.get_ophys_experiment_table().index[0]))\n"
        "print(e.max_projection.data.shape)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("(")


def test_copies_sample_writes_allensdk_symlinks(allensdk_copy):
    links = [p for p in allensdk_copy.rglob("*.nwb") if p.is_symlink()]
    assert links and all(p.resolve().is_file() for p in links)
    assert (allensdk_copy / "_manifest_last_used.txt").read_text() == manifest_name("1.0.0")

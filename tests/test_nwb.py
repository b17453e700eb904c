"""NWB sources and the fetch / verify / adopt commands, against the catalog and loopback S3."""

from __future__ import annotations

import shutil

import duckdb
import intake
import pynwb
import pytest

from intake_vbo.base.errors import VboError
from intake_vbo.cli import main
from intake_vbo.drivers.resolve import catalog_version
from intake_vbo.nwb.experiment import BehaviorOphysExperiment
from intake_vbo.nwb.session import BehaviorSession
from intake_vbo.sample.release import SAMPLE_VERSIONS
from intake_vbo.transfer.cache import Cache, fetch_many


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("VBO_CACHE_DIR", str(root))
    monkeypatch.setenv("VBO_BACKOFF_BASE", "0.001")
    return root


@pytest.fixture(scope="module")
def cat(catalog_dir):
    return intake.open_catalog(str(catalog_dir / "catalog.yaml"))


def index_rows(catalog_dir, sql, *params):
    con = duckdb.connect(str(catalog_dir / "vbo.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_ophys_experiment_reads_lazily_as_an_experiment(cat, cache_root):
    exp_id = int(cat.latest.ophys_experiments.read().index[0])
    source = cat.latest.ophys_experiment(ophys_experiment_id=exp_id)
    info = source.discover()["metadata"]
    assert info["cached"] is False
    assert info["key"].endswith(f"behavior_ophys_experiment_{exp_id}.nwb")
    assert len(info["file_hash"]) == 128 and info["version_id"]
    assert source.describe()["file"]["key"] == info["key"]
    experiment = source.read()
    assert isinstance(experiment, BehaviorOphysExperiment)
    nwb = experiment.nwbfile
    assert isinstance(nwb, pynwb.NWBFile)
    assert nwb.identifier == str(exp_id)
    assert "ophys" in nwb.processing
    source.close()
    assert experiment.closed  # the source closes what it returned
    assert source.discover()["metadata"]["cached"] is True
    path = source.fetch()
    assert path.startswith(str(cache_root)) and path.endswith(info["file_hash"] + ".nwb")


def test_behavior_session_with_imaging_serves_first_experiment(cat, catalog_dir, cache_root):
    latest = SAMPLE_VERSIONS[-1]
    sessions = cat.latest.behavior_sessions.read()
    has_experiments = [
        isinstance(ids, list) and len(ids) > 0 for ids in sessions["ophys_experiment_id"]
    ]
    imaged = sessions[has_experiments]
    session_id = int(imaged.index[0])
    first = imaged.iloc[0]["ophys_experiment_id"][0]
    (expected,) = index_rows(
        catalog_dir,
        "SELECT file_hash FROM files WHERE manifest_version = ? AND ophys_experiment_id = ?",
        latest,
        first,
    )
    source = cat.latest.behavior_session(behavior_session_id=session_id)
    assert source.file_entry()["file_hash"] == expected[0]
    session = source.read()
    assert isinstance(session, BehaviorSession)
    assert session.nwbfile.identifier == str(first)
    source.close()


def test_behavior_only_session_has_its_own_file(cat, cache_root):
    files = cat.latest.files.read()
    row = files[files["kind"] == "behavior_session"].iloc[0]
    source = cat.latest.behavior_session(behavior_session_id=int(row["behavior_session_id"]))
    assert source.file_entry()["key"] == row["key"]
    assert source.read().nwbfile.identifier == str(row["behavior_session_id"])
    source.close()


def test_unknown_id_names_id_and_version(cat, cache_root):
    with pytest.raises(
        VboError, match=f"ophys experiment 12345 has no NWB file in release {SAMPLE_VERSIONS[-1]}"
    ):
        cat.latest.ophys_experiment(ophys_experiment_id=12345).read()
    with pytest.raises(
        VboError, match=f"behavior session 12345 is not in release {SAMPLE_VERSIONS[-1]}"
    ):
        cat.latest.behavior_session(behavior_session_id=12345).fetch()


def test_bucket_url_override_serves_a_mirror(catalog_dir, new_bucket, cache_root, monkeypatch):
    mirror = new_bucket()  # the same release published again, under another bucket name
    cat = intake.open_catalog(str(catalog_dir / "catalog.yaml"))
    exp_id = int(cat.latest.ophys_experiments.read().index[-1])
    monkeypatch.setenv("VBO_BUCKET_URL", mirror)
    source = cat.latest.ophys_experiment(ophys_experiment_id=exp_id)
    assert source.url().startswith(mirror)
    # the mirror has its own version ids: the recorded ones are not there
    with pytest.raises(VboError, match="HTTP 4"):
        source.fetch()


def test_version_switch_transfers_only_changed_content(catalog_dir, cache_root):
    old, new = SAMPLE_VERSIONS[-2], SAMPLE_VERSIONS[-1]
    first = catalog_version(catalog_dir, old)
    report = fetch_many(first.cache(), first.items(everything=True), workers=8)
    assert not report.failed and len(report.fetched) == len(first.items(everything=True))
    second = catalog_version(catalog_dir, new)
    items = second.items(everything=True)
    report = fetch_many(second.cache(), items, workers=8)
    assert not report.failed
    new_hashes = {
        h
        for (h,) in index_rows(
            catalog_dir,
            "SELECT file_hash FROM files WHERE manifest_version = ? EXCEPT "
            "SELECT file_hash FROM files WHERE manifest_version = ?",
            new,
            old,
        )
    }
    assert new_hashes, "the sample re-uploads some files in each version"
    cache = Cache(cache_root)
    expected = sum(cache.path(h).stat().st_size for h in new_hashes)
    assert report.bytes_transferred == expected
    assert len(report.fetched) == len(new_hashes)


def test_fetch_verify_adopt_commands(catalog_dir, cat, cache_root, tmp_path, capsys):
    exps = cat.latest.ophys_experiments.read().index[:2].tolist()
    argv = [
        "fetch",
        "--catalog",
        str(catalog_dir),
        "--version",
        "latest",
        "--workers",
        "2",
        "--ophys-experiment",
        *map(str, exps),
    ]
    assert main(argv) == 0
    assert "fetched 2, already cached 0, failed 0" in capsys.readouterr().out
    assert main(argv) == 0
    assert "fetched 0, already cached 2, failed 0" in capsys.readouterr().out

    cached = sorted(cache_root.rglob("*.nwb"))
    assert len(cached) == 2
    victim = cached[0]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert main(["verify", "--catalog", str(catalog_dir)]) == 2
    out = capsys.readouterr().out
    assert f"damaged: {victim}" in out and "1 ok, 1 damaged" in out
    assert main(["verify", "--catalog", str(catalog_dir), "--repair"]) == 0
    assert f"repaired: {victim}" in capsys.readouterr().out
    (cache_root / "stray.txt").write_text("left here by someone")
    assert main(["verify", "--catalog", str(catalog_dir)]) == 0  # reported, not judged
    out = capsys.readouterr().out
    assert f"foreign: {cache_root / 'stray.txt'}" in out and "2 ok, 0 damaged, 1 foreign" in out

    # an AllenSDK-style cache elsewhere is adopted into a new, empty cache
    sdk = tmp_path / "allensdk" / "visual-behavior-ophys-1.1.0" / "behavior_ophys_experiments"
    sdk.mkdir(parents=True)
    for i, path in enumerate(cached):
        shutil.copy(path, sdk / f"behavior_ophys_experiment_{exps[i]}.nwb")
    (sdk / "unrelated.nwb").write_bytes(b"not in any manifest")
    other = tmp_path / "other-cache"
    import os

    os.environ["VBO_CACHE_DIR"] = str(other)
    assert main(["adopt", str(tmp_path / "allensdk"), "--catalog", str(catalog_dir)]) == 0
    assert "adopted 2, already cached 0, not in the catalog 1" in capsys.readouterr().out
    assert sorted(p.name for p in other.rglob("*.nwb")) == sorted(p.name for p in cached)


def test_fetch_all_reports_failures_and_keeps_successes(
    new_bucket, s3_endpoint, tmp_path, cache_root, capsys
):
    from intake_vbo.catalog.build import build
    from intake_vbo.sample.s3 import s3_client

    url = new_bucket([SAMPLE_VERSIONS[0]])
    out = tmp_path / "cat"
    build(out, url)
    version = catalog_version(out, SAMPLE_VERSIONS[0])
    items = version.items(everything=True)
    # one object version vanishes from the server: that file fails, the rest arrive
    bucket = url.rstrip("/").rsplit("/", 1)[1]
    gone_key, gone_vid, gone_hash = index_rows(
        out, "SELECT key, version_id, file_hash FROM files ORDER BY file_id LIMIT 1"
    )[0]
    s3_client(s3_endpoint).delete_object(Bucket=bucket, Key=gone_key, VersionId=gone_vid)
    code = main(["fetch", "--catalog", str(out), "--version", SAMPLE_VERSIONS[0], "--all"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"fetched {len(items) - 1}, already cached 0, failed 1" in captured.out
    assert gone_key in captured.err and "HTTP 404" in captured.err
    cache = Cache(cache_root)
    assert not cache.has(gone_hash)
    assert sum(cache.has(h) for _, _, h in items) == len(items) - 1

"""Bad input: one line naming what and where, exit status 2, the catalog untouched."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import socket

import pytest
import requests
from conftest import snapshot

from intake_vbo.catalog.build import build
from intake_vbo.catalog.release import list_manifests, manifest_key
from intake_vbo.cli import main
from intake_vbo.sample.release import SAMPLE_VERSIONS
from intake_vbo.sample.s3 import publish, put_object, s3_client

NEW = "1.2.0"
PREFIX = "visual-behavior-ophys/"
BUCKET = "t-bad-input"  # this module's own


@pytest.fixture(scope="module")
def pristine(s3_endpoint, sample_release, tmp_path_factory):
    """Every sample version in a bucket of this module's, and their catalog, built once.

    Tests work on copies of the catalog and put the bucket back as they found it.
    """
    url = publish(sample_release, s3_endpoint, bucket=BUCKET)
    out = tmp_path_factory.mktemp("pristine") / "cat"
    build(out, url)
    return url, out, snapshot(out)


@pytest.fixture
def built(pristine, tmp_path, s3_endpoint, monkeypatch):
    """A good catalog of every sample version, and a way to publish a bad 1.2.0."""
    monkeypatch.setenv("VBO_BACKOFF_BASE", "0.001")
    url, master, master_files = pristine
    out = tmp_path / "cat"
    shutil.copytree(master, out)  # bytes and modification times
    assert snapshot(out) == master_files
    latest = requests.get(url + manifest_key(SAMPLE_VERSIONS[-1]), timeout=10).json()
    uploaded = []  # (key, S3 version id) of everything this test puts into the bucket

    def put(key: str, body: bytes) -> str:
        uploaded.append((key, put_object(s3_endpoint, key, body, bucket=BUCKET)))
        return uploaded[-1][1]

    def publish_manifest(doc_or_bytes) -> None:
        body = (
            doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
        )
        put(manifest_key(NEW), body)

    yield out, url, latest, publish_manifest, put
    # The bucket goes back as it was (deleting a version for good brings back the one
    # before it), and the catalog every test copies was never touched.
    client = s3_client(s3_endpoint)
    for key, version_id in uploaded:
        client.delete_object(Bucket=BUCKET, Key=key, VersionId=version_id)
    assert list(list_manifests(url)) == list(SAMPLE_VERSIONS)
    assert snapshot(master) == master_files


def next_manifest(latest: dict) -> dict:
    doc = copy.deepcopy(latest)
    doc["manifest_version"] = NEW
    return doc


def fails_cleanly(argv, out, capsys, *expected: str) -> str:
    before = snapshot(out)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("intake-vbo: error: ") and "\n" not in err, err
    for text in expected:
        assert text in err, err
    assert snapshot(out) == before
    return err


def rebuild(out, url):
    return ["build", "--out", str(out), "--bucket-url", url]


def test_unknown_version(built, capsys):
    out, url, *_ = built
    fails_cleanly(
        [*rebuild(out, url), "--versions", "9.9.9"], out, capsys, "'9.9.9'", "released are"
    )


def test_unreachable_server(built, capsys):
    out, *_ = built
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/visual-behavior-ophys-data/"
    fails_cleanly(rebuild(out, dead), out, capsys, f"127.0.0.1:{port}", "failed after")


def test_bad_bucket_url(built, capsys):
    out, *_ = built
    fails_cleanly(rebuild(out, "ftp://example/"), out, capsys, "bucket URL")


def test_manifest_not_json(built, capsys):
    out, url, _, publish_manifest, _ = built
    publish_manifest(b'{"project_name": "visual-behavior-ophys", ')
    fails_cleanly(rebuild(out, url), out, capsys, manifest_key(NEW), "not valid JSON")


def test_manifest_version_mismatch(built, capsys):
    out, url, latest, publish_manifest, _ = built
    doc = next_manifest(latest)
    doc["manifest_version"] = "1.1.9"
    publish_manifest(doc)
    fails_cleanly(rebuild(out, url), out, capsys, manifest_key(NEW), "does not match")


def test_manifest_entry_with_foreign_host(built, capsys):
    out, url, latest, publish_manifest, _ = built
    doc = next_manifest(latest)
    file_id = next(iter(doc["data_files"]))
    doc["data_files"][file_id]["url"] = "https://example.org/" + PREFIX + "x.nwb"
    publish_manifest(doc)
    fails_cleanly(rebuild(out, url), out, capsys, f"data_files['{file_id}']", "example.org")


def test_manifest_entry_bad_hash(built, capsys):
    out, url, latest, publish_manifest, _ = built
    doc = next_manifest(latest)
    file_id = next(iter(doc["data_files"]))
    doc["data_files"][file_id]["file_hash"] = "ab" * 32  # 64 hex: a SHA-256, not BLAKE2b
    publish_manifest(doc)
    fails_cleanly(rebuild(out, url), out, capsys, "BLAKE2b")


def test_metadata_hash_mismatch(built, capsys):
    out, url, latest, publish_manifest, _ = built
    doc = next_manifest(latest)
    doc["metadata_files"]["ophys_session_table"]["file_hash"] = hashlib.blake2b(b"x").hexdigest()
    publish_manifest(doc)
    fails_cleanly(rebuild(out, url), out, capsys, "ophys_session_table.csv", "mismatch")


def test_metadata_version_id_missing(built, capsys):
    out, url, latest, publish_manifest, _ = built
    doc = next_manifest(latest)
    doc["metadata_files"]["ophys_session_table"]["version_id"] = "no-such-version"
    publish_manifest(doc)
    fails_cleanly(rebuild(out, url), out, capsys, "ophys_session_table.csv", "HTTP 4")


def publish_csv(built, table: str, body: bytes) -> None:
    _, _, latest, publish_manifest, put = built
    key = f"{PREFIX}project_metadata/{table}.csv"
    version_id = put(key, body)
    doc = next_manifest(latest)
    doc["metadata_files"][table].update(
        version_id=version_id, file_hash=hashlib.blake2b(body).hexdigest()
    )
    publish_manifest(doc)


def good_csv(built, table: str) -> bytes:
    _, url, latest, _, _ = built
    entry = latest["metadata_files"][table]
    key = entry["url"].split(".amazonaws.com/", 1)[1]
    return requests.get(f"{url}{key}?versionId={entry['version_id']}", timeout=10).content


def test_ragged_csv(built, capsys):
    out, url = built[:2]
    lines = good_csv(built, "ophys_experiment_table").splitlines(keepends=True)
    lines[3] = b"1,2,3\n"
    publish_csv(built, "ophys_experiment_table", b"".join(lines))
    fails_cleanly(rebuild(out, url), out, capsys, "ophys_experiment_table.csv")


def test_csv_value_of_wrong_type(built, capsys):
    out, url = built[:2]
    text = good_csv(built, "ophys_session_table").decode()
    header, first, *rest = text.splitlines(keepends=True)
    columns = header.strip().split(",")
    cells = first.split(",")
    cells[columns.index("ophys_session_id")] = "not-a-number"
    publish_csv(built, "ophys_session_table", "".join([header, ",".join(cells), *rest]).encode())
    fails_cleanly(rebuild(out, url), out, capsys, "ophys_session_table.csv", "ophys_session_id")


def test_csv_duplicate_ids(built, capsys):
    out, url = built[:2]
    text = good_csv(built, "behavior_session_table").decode()
    header, first, *rest = text.splitlines(keepends=True)
    publish_csv(built, "behavior_session_table", "".join([header, first, first, *rest]).encode())
    fails_cleanly(
        rebuild(out, url), out, capsys, "behavior_session_table.csv", "behavior_session_id"
    )


def test_unknown_version_for_diff_and_fetch(built, capsys):
    out = built[0]
    fails_cleanly(
        ["diff", "0.0.1", SAMPLE_VERSIONS[-1], "--catalog", str(out)], out, capsys, "'0.0.1'"
    )
    fails_cleanly(
        ["fetch", "--catalog", str(out), "--version", "0.0.1", "--all"], out, capsys, "'0.0.1'"
    )


def test_no_catalog_here(tmp_path, capsys):
    assert main(["diff", "1.0.0", "1.1.0", "--catalog", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "intake-vbo build" in err

"""The build end to end: release on loopback S3 -> Parquet, DuckDB, intake catalogs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import intake
import pyarrow.parquet as pq
import pytest
from conftest import snapshot

from intake_vbo.catalog.build import build
from intake_vbo.catalog.release import list_manifests
from intake_vbo.cli import main
from intake_vbo.sample.release import SAMPLE_VERSIONS, load_layout

BIN = Path(sys.executable).parent


def csv_rows(release: Path, version: str, table: str) -> int:
    """Rows of one generated CSV, counted from the release itself."""
    import pandas as pd

    from intake_vbo.sample.release import object_path

    layout = load_layout(release, version)
    key = f"visual-behavior-ophys/project_metadata/{table}.csv"
    entry = layout["objects"][key] if "objects" in layout else layout[key]
    return len(pd.read_csv(object_path(release, entry["blake2b"])))


def test_listing_pages_through_continuation_tokens(bucket_url):
    assert list(list_manifests(bucket_url, page_size=1)) == list(SAMPLE_VERSIONS)


def test_build_writes_index_parquet_and_catalogs(catalog_dir, sample_release):
    assert (catalog_dir / "catalog.yaml").is_file()
    assert (catalog_dir / "vbo.duckdb").is_file()
    con = duckdb.connect(str(catalog_dir / "vbo.duckdb"), read_only=True)
    for version in SAMPLE_VERSIONS:
        for table, csv in [
            ("behavior_sessions", "behavior_session_table"),
            ("ophys_sessions", "ophys_session_table"),
            ("ophys_experiments", "ophys_experiment_table"),
        ]:
            n = con.execute(
                f"SELECT count(*) FROM {table} WHERE manifest_version = ?", [version]
            ).fetchone()[0]
            assert n == csv_rows(sample_release, version, csv), (table, version)
            part = catalog_dir / "parquet" / table / f"manifest_version={version}"
            assert len(list(part.glob("*.parquet"))) == 1
    latest = SAMPLE_VERSIONS[-1]
    assert con.execute("SELECT DISTINCT manifest_version FROM latest_files").fetchall() == [
        (latest,)
    ]
    # ophys_cells arrived after 0.3.0
    cells = dict(
        con.execute("SELECT manifest_version, count(*) FROM ophys_cells GROUP BY 1").fetchall()
    )
    assert SAMPLE_VERSIONS[0] not in cells and all(cells[v] > 0 for v in SAMPLE_VERSIONS[1:])
    con.close()


def test_files_table_matches_the_manifests(catalog_dir, bucket_url):
    import requests

    con = duckdb.connect(str(catalog_dir / "vbo.duckdb"), read_only=True)
    for version, obj in list_manifests(bucket_url).items():
        manifest = requests.get(bucket_url + obj.key, timeout=10).json()
        rows = con.execute(
            "SELECT file_id, key, version_id, file_hash, kind, behavior_session_id, "
            "ophys_experiment_id FROM files WHERE manifest_version = ?",
            [version],
        ).fetchall()
        assert len(rows) == len(manifest["data_files"])
        for file_id, key, version_id, file_hash, kind, bsid, oeid in rows:
            entry = manifest["data_files"][str(file_id)]
            assert entry["url"].endswith("/" + key)
            assert (entry["version_id"], entry["file_hash"]) == (version_id, file_hash)
            # every file names its behavior session; experiment files their experiment too
            assert bsid is not None
            assert (oeid is not None) == (kind == "ophys_experiment")
    con.close()


def test_columns_differ_between_versions_and_are_null_where_missing(catalog_dir):
    con = duckdb.connect(str(catalog_dir / "vbo.duckdb"), read_only=True)
    first, last = SAMPLE_VERSIONS[0], SAMPLE_VERSIONS[-1]
    own = {
        v: set(
            pq.read_schema(next((catalog_dir / "parquet/behavior_sessions").glob(f"*={v}/*"))).names
        )
        for v in (first, last)
    }
    added = sorted(own[last] - own[first])
    assert added, "the sample's latest version adds columns"
    column = added[0]
    nulls = con.execute(
        f"SELECT count(*), count({column}) FROM behavior_sessions WHERE manifest_version = ?",
        [first],
    ).fetchone()
    assert nulls[0] > 0 and nulls[1] == 0
    assert (
        con.execute(
            f"SELECT count({column}) FROM behavior_sessions WHERE manifest_version = ?", [last]
        ).fetchone()[0]
        > 0
    )
    con.close()


def test_changes_between_consecutive_versions(catalog_dir):
    con = duckdb.connect(str(catalog_dir / "vbo.duckdb"), read_only=True)
    pairs = con.execute(
        "SELECT DISTINCT from_version, to_version FROM changes ORDER BY 1"
    ).fetchall()
    assert pairs == list(zip(SAMPLE_VERSIONS, SAMPLE_VERSIONS[1:], strict=False))
    kinds = {
        row[0]
        for row in con.execute(
            "SELECT change FROM changes WHERE to_version = ? AND kind != 'metadata'",
            [SAMPLE_VERSIONS[-1]],
        ).fetchall()
    }
    assert "changed" in kinds  # re-uploaded NWB files
    # the changed set is exactly the keys whose version id or hash moved, computed here
    a, b = SAMPLE_VERSIONS[-2], SAMPLE_VERSIONS[-1]
    rows = {
        v: dict(
            (
                (k, (vid, h))
                for k, vid, h in con.execute(
                    "SELECT key, version_id, file_hash FROM files WHERE manifest_version = ?", [v]
                ).fetchall()
            )
        )
        for v in (a, b)
    }
    moved = {k for k in rows[a].keys() & rows[b].keys() if rows[a][k] != rows[b][k]}
    listed = {
        k
        for (k,) in con.execute(
            "SELECT key FROM changes WHERE to_version = ? AND change = 'changed' "
            "AND kind != 'metadata'",
            [b],
        ).fetchall()
    }
    assert listed == moved and moved
    deleted = {
        k
        for (k,) in con.execute(
            "SELECT key FROM changes WHERE to_version = ? AND change = 'deleted'", [b]
        ).fetchall()
    }
    assert deleted == rows[a].keys() - rows[b].keys()
    con.close()


def test_intake_catalog_tables(catalog_dir):
    cat = intake.open_catalog(str(catalog_dir / "catalog.yaml"))
    names = ["v" + v.replace(".", "_") for v in SAMPLE_VERSIONS]
    assert list(cat) == ["latest", *names]
    assert "ophys_cells" not in list(cat[names[0]])
    assert {"ophys_cells", "files", "behavior_session", "ophys_experiment"} <= set(cat.latest)
    exps = cat.latest.ophys_experiments.read()
    assert exps.index.name == "ophys_experiment_id"
    assert exps.index.is_unique
    assert str(exps["date_of_acquisition"].dtype).startswith("datetime64") and "UTC" in str(
        exps["date_of_acquisition"].dtype
    )
    sessions = cat[names[-1]].ophys_sessions.read()
    assert all(isinstance(v, list) for v in sessions["ophys_experiment_id"])
    schema = cat.latest.behavior_sessions.discover()
    behavior = cat.latest.behavior_sessions.read()
    assert schema["shape"] == (len(behavior), len(behavior.columns) + 1)
    assert behavior.index.name == "behavior_session_id"
    dask_df = cat.latest.ophys_cells.to_dask()
    assert len(dask_df.compute()) == len(cat.latest.ophys_cells.read())
    files = cat.latest.files.read()
    assert files.index.name == "file_id" and {"key", "version_id", "file_hash"} <= set(files)


def test_catalog_directory_can_move(catalog_dir, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(catalog_dir, moved)
    cat = intake.open_catalog(str(moved / "catalog.yaml"))
    assert len(cat.latest.ophys_sessions.read()) > 0
    assert cat.latest.ophys_sessions.path.startswith(str(moved))


def test_duckdb_cli_opens_index_from_any_directory(catalog_dir, tmp_path):
    cli = BIN / "duckdb"
    assert cli.exists(), "duckdb-cli is a test dependency"
    result = subprocess.run(
        [
            str(cli),
            "-readonly",
            "-csv",
            str(catalog_dir / "vbo.duckdb"),
            "-c",
            "SELECT manifest_version, count(*) FROM behavior_sessions GROUP BY 1 ORDER BY 1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == list(SAMPLE_VERSIONS)
    # The index is written for DuckDB 1.5 and later (storage_compatibility_version), so
    # any CLI from 1.5 on opens it, as it just did.
    version = subprocess.run([str(cli), "-version"], capture_output=True, text=True).stdout
    found = re.match(r"v(\d+)\.(\d+)\.", version)
    assert found and tuple(map(int, found.groups())) >= (1, 5), version


def test_versions_and_diff_commands(bucket_url, catalog_dir, capsys):
    assert main(["versions", "--bucket-url", bucket_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"{SAMPLE_VERSIONS[-1]}  (latest)"
    assert out[:-1] == list(SAMPLE_VERSIONS[:-1])
    a, b = SAMPLE_VERSIONS[-2], SAMPLE_VERSIONS[-1]
    assert main(["diff", a, b, "--catalog", str(catalog_dir), "--keys"]) == 0
    out = capsys.readouterr().out.splitlines()
    con = duckdb.connect(str(catalog_dir / "vbo.duckdb"), read_only=True)
    ids = "SELECT behavior_session_id FROM behavior_sessions WHERE manifest_version = ?"
    removed = con.execute(f"SELECT count(*) FROM ({ids} EXCEPT {ids})", [a, b]).fetchone()[0]
    added = con.execute(f"SELECT count(*) FROM ({ids} EXCEPT {ids})", [b, a]).fetchone()[0]
    changes = con.execute(
        "SELECT change, kind, key FROM changes WHERE to_version = ? ORDER BY ALL", [b]
    ).fetchall()
    con.close()
    line = next(x for x in out if x.startswith("  behavior_sessions:"))
    assert line.startswith(f"  behavior_sessions: {added} rows added, {removed} removed,")
    assert removed > 0 and "columns added: " in line
    listed = sorted(tuple(x.split("\t")) for x in out if x.count("\t") == 2)
    assert listed == sorted(changes) and listed


def test_incremental_build_adds_only_new_work(new_bucket, tmp_path):
    out = tmp_path / "cat"
    url = new_bucket(list(SAMPLE_VERSIONS[:-1]))
    first = build(out, url)
    assert first.built == list(SAMPLE_VERSIONS[:-1])
    before = snapshot(out)
    parquet_before = {k: v for k, v in before.items() if k.startswith("parquet/")}

    noop = build(out, url)
    assert noop.built == [] and noop.unchanged == list(SAMPLE_VERSIONS[:-1])
    assert snapshot(out) == before  # nothing rewritten, not even touched

    # a new --cache-dir is recorded, without fetching or rewriting any data
    assert build(out, url, cache_dir=str(tmp_path / "lab-cache")).built == []
    cat = intake.open_catalog(str(out / "catalog.yaml"))
    assert cat.metadata["intake_vbo"]["cache_dir"] == str(tmp_path / "lab-cache")
    assert cat.latest.ophys_experiment.describe()["args"]["cache_dir"] == str(
        tmp_path / "lab-cache"
    )
    assert {k: v for k, v in snapshot(out).items() if k.startswith("parquet/")} == parquet_before
    before = snapshot(out)

    new_bucket([SAMPLE_VERSIONS[-1]])
    second = build(out, url)
    assert second.built == [SAMPLE_VERSIONS[-1]]
    after = snapshot(out)
    for name, content in parquet_before.items():
        assert after[name] == content  # older partitions untouched
    cat = intake.open_catalog(str(out / "catalog.yaml"))
    assert list(cat)[-1] == "v" + SAMPLE_VERSIONS[-1].replace(".", "_")
    assert cat.latest.describe()["args"]["path"].endswith(
        "v" + SAMPLE_VERSIONS[-1].replace(".", "_") + ".yaml"
    )


def test_build_chosen_and_latest_versions(bucket_url, tmp_path):
    out = tmp_path / "cat"
    assert build(out, bucket_url, versions="latest").built == [SAMPLE_VERSIONS[-1]]
    assert build(out, bucket_url, versions=SAMPLE_VERSIONS[0]).built == [SAMPLE_VERSIONS[0]]
    cat = intake.open_catalog(str(out / "catalog.yaml"))
    assert list(cat)[1:] == [
        "v" + v.replace(".", "_") for v in (SAMPLE_VERSIONS[0], SAMPLE_VERSIONS[-1])
    ]
    meta = json.loads(json.dumps(cat.metadata))
    assert meta["intake_vbo"]["latest"] == SAMPLE_VERSIONS[-1]


# The crash points of a build (intake_vbo.base.crash), in order: for each, the files the
# previous catalog had that a crash there leaves changed, and whether the new version's
# partitions are then staged (in .staging) or committed (under parquet/).
BUILD_STEPS = {
    "build:fetched": (set(), False, False),
    "build:staged": (set(), True, False),
    "build:parts-committed": (set(), False, True),
    "build:index-written": ({"vbo.duckdb"}, False, True),
    "build:catalogs-written": ({"vbo.duckdb", "catalog.yaml"}, False, True),
}


@pytest.fixture(scope="module")
def upgrade(s3_endpoint, sample_release, tmp_path_factory):
    """A catalog of every sample version but the last, a bucket that has the last too,
    and the catalog an uninterrupted build makes of them."""
    from intake_vbo.sample.s3 import publish

    bucket = "t-crash-build"
    url = publish(sample_release, s3_endpoint, versions=list(SAMPLE_VERSIONS[:-1]), bucket=bucket)
    old = tmp_path_factory.mktemp("old") / "cat"
    build(old, url)
    publish(sample_release, s3_endpoint, versions=[SAMPLE_VERSIONS[-1]], bucket=bucket)
    whole = tmp_path_factory.mktemp("whole") / "cat"
    shutil.copytree(old, whole)
    assert build(whole, url).built == [SAMPLE_VERSIONS[-1]]
    return url, old, whole


def partitions(root: Path) -> list[tuple]:
    with duckdb.connect(str(root / "vbo.duckdb"), read_only=True) as con:
        return con.execute("SELECT * FROM partitions ORDER BY ALL").fetchall()


@pytest.fixture(scope="module")
def killed_builds(upgrade, tmp_path_factory):
    """For each crash point, a copy of the old catalog that a build died in at that point.

    The builds run at once, each in a process of its own with VBO_CRASH_AT naming its
    step; returns step -> (catalog, its snapshot before, exit status, stderr).
    """
    url, old, _ = upgrade
    runs = {}
    for step in BUILD_STEPS:
        out = tmp_path_factory.mktemp("killed") / "cat"
        shutil.copytree(old, out)
        command = [sys.executable, "-m", "intake_vbo.cli", "build", "--out", str(out)]
        process = subprocess.Popen(
            [*command, "--bucket-url", url],
            env={**os.environ, "VBO_CRASH_AT": step},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs[step] = out, snapshot(out), process
    done = {}
    for step, (out, before, process) in runs.items():
        stderr = process.communicate(timeout=120)[1]
        done[step] = out, before, process.returncode, stderr
    return done


@pytest.mark.parametrize("step", BUILD_STEPS)
def test_a_build_killed_at_each_step_leaves_a_usable_catalog(upgrade, killed_builds, step):
    url, old, whole = upgrade
    new, previous = SAMPLE_VERSIONS[-1], SAMPLE_VERSIONS[-2]
    out, before, status, stderr = killed_builds[step]
    assert status == -signal.SIGKILL, (status, stderr)
    expected = intake.open_catalog(str(old / "catalog.yaml")).latest.ophys_sessions.read()

    # The build got exactly as far as the step, and left the rest of the catalog as it was.
    after = snapshot(out)
    changed = {name for name, content in before.items() if after.get(name) != content}
    if "catalog.yaml" in BUILD_STEPS[step][0]:  # version catalogs may be rewritten before it
        changed = {n for n in changed if n == "catalog.yaml" or not n.endswith(".yaml")}
    added = set(after) - set(before)
    staged = {n for n in added if n.startswith(".staging/parts/")}
    committed = {n for n in added if n.startswith("parquet/") and f"={new}/" in n}
    assert (changed, bool(staged), bool(committed)) == BUILD_STEPS[step], (changed, added)
    assert all(f"={new}/" in n for n in staged)

    # What a reader opens still works: the old catalog, or the new one once it is whole.
    cat = intake.open_catalog(str(out / "catalog.yaml"))
    if "catalog.yaml" in changed:
        assert list(cat)[-1] == "v" + new.replace(".", "_")
        assert len(cat.latest.ophys_sessions.read()) > 0
    else:
        assert list(cat)[-1] == "v" + previous.replace(".", "_")
        assert cat.latest.ophys_sessions.read().equals(expected)
    with duckdb.connect(str(out / "vbo.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM files").fetchone()[0] > 0

    # The next build finishes the job (the data again, unless the new index already
    # records it): the catalog an uninterrupted build makes.
    report = build(out, url)
    assert report.built == ([] if "vbo.duckdb" in changed else [new])
    assert not (out / ".staging").exists()
    final, reference = snapshot(out), snapshot(whole)
    del final["vbo.duckdb"], reference["vbo.duckdb"]  # DuckDB files differ byte-wise
    assert {k: v[0] for k, v in final.items()} == {k: v[0] for k, v in reference.items()}
    assert partitions(out) == partitions(whole)
    on_disk = {str(p.relative_to(out)) for p in (out / "parquet").rglob("*.parquet")}
    assert on_disk == {path for _, _, path, _ in partitions(out)}


def test_build_script_and_console_script_are_the_same_command(bucket_url, tmp_path):
    from conftest import REPO

    out = tmp_path / "cat"
    script = [sys.executable, str(REPO / "scripts" / "build_catalog.py")]
    console = [str(BIN / "intake-vbo"), "build"]
    args = ["--out", str(out), "--bucket-url", bucket_url, "--versions", SAMPLE_VERSIONS[0]]
    first = subprocess.run([*script, *args], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"built {SAMPLE_VERSIONS[0]}" in first.stdout
    again = subprocess.run([*console, *args], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"unchanged: {SAMPLE_VERSIONS[0]}" in again.stdout
    bad = subprocess.run(
        [*console, *args[:4], "--versions", "7.7.7"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'7.7.7'" in bad.stderr


def test_build_through_a_flaky_server(bucket_url, s3_endpoint, tmp_path, monkeypatch):
    from faultproxy import FaultProxy

    monkeypatch.setenv("VBO_BACKOFF_BASE", "0.001")
    direct = tmp_path / "direct"
    build(direct, bucket_url)
    with FaultProxy(
        s3_endpoint, rate=0.3, seed=3, faults=("500", "reset-headers", "reset-body", "truncate")
    ) as proxy:
        flaky = bucket_url.replace(s3_endpoint, proxy.url)
        report = build(tmp_path / "flaky", flaky)
        assert sum(proxy.injected.values()) > 0
    assert report.built == list(SAMPLE_VERSIONS)
    for table in ("behavior_sessions", "ophys_cells", "files"):
        for version in SAMPLE_VERSIONS[1:]:
            pattern = f"parquet/{table}/manifest_version={version}/*.parquet"
            (a,), (b,) = direct.glob(pattern), (tmp_path / "flaky").glob(pattern)
            assert pq.read_table(a).equals(pq.read_table(b))

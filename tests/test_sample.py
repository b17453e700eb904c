"""The sample release generator and its loopback S3 publisher, against a real moto server."""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import requests
from shared import FIXTURES

import intake_vbo.sample.release as sample_release
from intake_vbo.catalog.manifest import parse_manifest
from intake_vbo.catalog.release import DEFAULT_BUCKET_URL as PUBLIC_URL
from intake_vbo.sample.release import (
    MARKER,
    SAMPLE_VERSIONS,
    generate_release,
    load_layout,
    object_path,
)
from intake_vbo.sample.s3 import (
    Served,
    create_bucket,
    publish,
    put_object,
    s3_client,
    start_server,
)

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.02
PREFIX = "visual-behavior-ophys/"
MANIFESTS = PREFIX + "manifests/"
TABLE_KEY = PREFIX + "project_metadata/{}.csv"


def read_table(release: Path, version: str, name: str) -> list[dict[str, str]] | None:
    """One generated CSV as raw strings (no parsing: the formats are under test)."""
    layout = load_layout(release, version)
    key = TABLE_KEY.format(name)
    if key not in layout["objects"]:
        return None
    text = object_path(release, layout["objects"][key]["blake2b"]).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def header(release: Path, version: str, name: str) -> list[str]:
    layout = load_layout(release, version)
    path = object_path(release, layout["objects"][TABLE_KEY.format(name)]["blake2b"])
    return path.read_text("utf-8").splitlines()[0].split(",")


@pytest.fixture(scope="module")
def served(sample_release):
    """The session's sample release, published on a loopback server of this module's own."""
    server, endpoint = start_server()
    try:
        yield Served(publish(sample_release, endpoint), endpoint, sample_release, server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def release(served) -> Path:
    return served.release


@pytest.fixture(scope="module")
def staged(served):
    """Publish 0.3.0 and 1.0.0 into a second bucket, look, then publish 1.1.0 and look again."""

    def look(bucket_url: str) -> dict:
        listing = requests.get(bucket_url, params={"list-type": "2", "prefix": MANIFESTS})
        keys = re.findall(r"<Key>([^<]+)</Key>", listing.text)
        return {key: requests.get(bucket_url + key).json() for key in keys if key.endswith(".json")}

    first = publish(served.release, served.endpoint_url, ["0.3.0", "1.0.0"], bucket="staged")
    before = look(first)
    second = publish(served.release, served.endpoint_url, ["1.1.0"], bucket="staged")
    return first, second, before, look(second)


def manifest_name(version: str) -> str:
    return f"{MANIFESTS}visual-behavior-ophys_project_manifest_v{version}.json"


# --- generation -----------------------------------------------------------------------


@pytest.mark.slow
def test_generation_is_deterministic_and_reused(release, tmp_path, monkeypatch):
    """Same seed -> same bytes, even in another process with another hash seed."""
    again = tmp_path / "again"
    code = (
        "import sys; from intake_vbo.sample.release import generate_release as g; "
        "g(sys.argv[1], scale=%r)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code % SCALE, str(again)], check=True, env=env)
    for version in SAMPLE_VERSIONS:
        assert load_layout(again, version) == load_layout(release, version)
    assert sorted(p.name for p in (again / "objects").iterdir()) == sorted(
        p.name for p in (release / "objects").iterdir()
    )

    # A complete generation with the same parameters is reused as it is: the model is not
    # built again, and no file or folder is created, written, renamed or even touched.
    def untouched(root: Path) -> dict:
        return {
            str(p): (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
            for p in [root, *root.rglob("*")]
            for st in [p.lstat()]
        }

    def no_generation(*args, **kwargs):
        raise AssertionError("a complete generation was generated again")

    before = untouched(again)
    monkeypatch.setattr(sample_release, "build_model", no_generation)
    assert generate_release(again, scale=SCALE) == again
    assert untouched(again) == before


@pytest.mark.slow
def test_interrupted_generation_is_redone(release, tmp_path):
    out = tmp_path / "partial"
    generate_release(out, versions=["1.0.0"], scale=SCALE)
    layout = load_layout(out, "1.0.0")
    victim = next(iter(layout["objects"].values()))["blake2b"]
    # As if killed midway: no marker, an object missing, a layout cut short.
    (out / MARKER).unlink()
    (out / "objects" / victim).unlink()
    (out / "1.0.0" / "layout.json").write_text("{")
    generate_release(out, versions=["1.0.0"], scale=SCALE)
    assert load_layout(out, "1.0.0") == layout == load_layout(release, "1.0.0")
    assert (out / "objects" / victim).is_file()
    # Other parameters replace the generation, leaving no stale versions behind.
    generate_release(out, versions=["0.3.0"], scale=SCALE)
    assert not (out / "1.0.0").exists()
    assert json.loads((out / MARKER).read_text())["versions"] == ["0.3.0"]


def test_every_object_hashes_to_its_name(release):
    for version in SAMPLE_VERSIONS:
        for key, entry in load_layout(release, version)["objects"].items():
            body = object_path(release, entry["blake2b"]).read_bytes()
            assert hashlib.blake2b(body).hexdigest() == entry["blake2b"], key
            assert len(body) == entry["size"], key


def test_tables_and_columns_per_version(release):
    names = {v: set(load_layout(release, v)["metadata_files"]) for v in SAMPLE_VERSIONS}
    assert "ophys_cells_table" not in names["0.3.0"]
    assert "ophys_cells_table" in names["1.0.0"] and "ophys_cells_table" in names["1.1.0"]
    old, new, newest = (header(release, v, "behavior_session_table") for v in SAMPLE_VERSIONS)
    assert "file_path" in old and "experience_level" not in old
    assert "file_path" not in new and "experience_level" in new
    trial_counts = [c for c in newest if c.endswith("trial_count")]
    assert len(trial_counts) == 8 and not set(trial_counts) & set(new)
    assert len(newest) == 35  # as the real 1.1.0 table
    assert len(header(release, "1.1.0", "ophys_session_table")) == 26
    added = set(header(release, "1.1.0", "ophys_experiment_table")) - set(
        header(release, "1.0.0", "ophys_experiment_table")
    )
    assert {"targeted_imaging_depth", "behavior_type"} <= added
    cells = read_table(release, "1.0.0", "ophys_cells_table")
    assert list(cells[0]) == ["cell_roi_id", "cell_specimen_id", "ophys_experiment_id"]


def test_csv_quirks(release):
    behavior = read_table(release, "1.0.0", "behavior_session_table")
    sessions = read_table(release, "1.0.0", "ophys_session_table")
    experiments = read_table(release, "1.0.0", "ophys_experiment_table")
    ophys_rows = [r for r in behavior if r["ophys_session_id"]]
    # Nullable integers as floats, empty for null; a list column with quoted commas.
    assert all(re.fullmatch(r"\d+\.0", r["ophys_session_id"]) for r in ophys_rows)
    assert any(r["session_number"] == "" for r in behavior)
    assert all(re.fullmatch(r"\d+", r["ophys_session_id"]) for r in sessions)
    for row in sessions:
        ids = ast.literal_eval(row["ophys_experiment_id"])
        assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
        assert isinstance(ast.literal_eval(row["ophys_container_id"]), list)
    assert all(re.fullmatch(r"\d+", r["ophys_container_id"]) for r in experiments)
    assert any(r["ophys_experiment_id"] == "[]" for r in behavior)
    assert {r["driver_line"] for r in behavior} <= {
        "['Sst-IRES-Cre']",
        "['Vip-IRES-Cre']",
        "['Slc17a7-IRES2-Cre', 'Camk2a-tTA']",
    }
    assert {r["passive"] for r in experiments} == {"True", "False"}
    # Dates: +00:00 in the behavior table, naive elsewhere but mixed, whole seconds too.
    assert all(r["date_of_acquisition"].endswith("+00:00") for r in behavior)
    forms = {re.sub(r"\d", "9", r["date_of_acquisition"]) for r in experiments}
    assert "9999-99-99 99:99:99.999999" in forms
    assert "9999-99-99 99:99:99.999999+99:99" in forms
    assert "9999-99-99 99:99:99" in forms
    assert any(re.fullmatch(r"[\d-]+ [\d:]+\+00:00", r["date_of_acquisition"]) for r in behavior)
    # mouse_id is a string that a numeric parse would damage; text may be non-ASCII.
    assert any(r["mouse_id"].startswith("0") for r in behavior)
    assert any(not r["project_code"].isascii() for r in behavior)
    # file_id: -999 or empty for sessions imaged (no behavior NWB), integers otherwise.
    assert {r["file_id"] for r in ophys_rows} == {"-999", ""}
    assert all(re.fullmatch(r"\d+", r["file_id"]) for r in behavior if not r["ophys_session_id"])
    # The trial counts 1.1.0 adds have a few nulls, so they are written as floats.
    counts = [r["trial_count"] for r in read_table(release, "1.1.0", "behavior_session_table")]
    assert "" in counts and all(re.fullmatch(r"\d+\.0", c) for c in counts if c)
    # Absolute file paths only before 1.0.0.
    old = read_table(release, "0.3.0", "ophys_experiment_table")
    assert all(r["file_path"].startswith("/allen/") for r in old)


def test_rows_are_consistent(release):
    for version in SAMPLE_VERSIONS:
        layout = load_layout(release, version)
        rows = read_table(release, version, "behavior_session_table")
        behavior = {r["behavior_session_id"]: r for r in rows}
        experiments = read_table(release, version, "ophys_experiment_table")
        by_session: dict[str, list[int]] = {}
        for e in experiments:
            by_session.setdefault(e["ophys_session_id"], []).append(int(e["ophys_experiment_id"]))
            key = layout["data_files"][e["file_id"]]
            assert key.endswith(f"/behavior_ophys_experiment_{e['ophys_experiment_id']}.nwb")
        for s in read_table(release, version, "ophys_session_table"):
            row = behavior[s["behavior_session_id"]]
            assert row["ophys_experiment_id"] == s["ophys_experiment_id"]
            assert sorted(ast.literal_eval(s["ophys_experiment_id"])) == sorted(
                by_session[s["ophys_session_id"]]
            )
        file_ids = [e["file_id"] for e in experiments]
        for row in behavior.values():
            if not row["ophys_session_id"]:
                file_ids.append(row["file_id"])
                key = layout["data_files"][row["file_id"]]
                assert key.endswith(f"/behavior_session_{row['behavior_session_id']}.nwb")
        assert sorted(file_ids, key=int) == sorted(layout["data_files"], key=int)
    # The same file keeps its file_id in every version.
    seen: dict[str, str] = {}
    for version in SAMPLE_VERSIONS:
        for file_id, key in load_layout(release, version)["data_files"].items():
            assert seen.setdefault(key, file_id) == file_id


def test_versions_change_rows_values_and_files(release):
    old, new = (load_layout(release, v) for v in ("1.0.0", "1.1.0"))
    rows = {
        v: {r["behavior_session_id"]: r for r in read_table(release, v, "behavior_session_table")}
        for v in ("1.0.0", "1.1.0")
    }
    removed = set(rows["1.0.0"]) - set(rows["1.1.0"])
    assert removed and not set(rows["1.1.0"]) - set(rows["1.0.0"])
    gone_sessions = {rows["1.0.0"][b]["ophys_session_id"] for b in removed} - {""}
    assert gone_sessions, "1.1.0 removes an ophys session"
    left = {r["ophys_session_id"] for r in read_table(release, "1.1.0", "ophys_experiment_table")}
    assert not {s.removesuffix(".0") for s in gone_sessions} & left
    changed = [
        b
        for b in rows["1.1.0"]
        if rows["1.1.0"][b]["age_in_days"] != rows["1.0.0"][b]["age_in_days"]
        or rows["1.1.0"][b]["experience_level"] != rows["1.0.0"][b]["experience_level"]
    ]
    assert 0 < len(changed) < len(rows["1.1.0"]) // 10
    nwb = [k for k in new["objects"] if k.endswith(".nwb") and k in old["objects"]]
    renewed = [k for k in nwb if new["objects"][k] != old["objects"][k]]
    assert 0 < len(renewed) < len(nwb) // 5
    assert set(old["data_files"].values()) - set(new["data_files"].values())  # files removed


def _sample_nwb(release: Path, kind: str, version: str = "1.1.0", passive: bool = False):
    """(key, path) of a sample NWB file: "behavior_sessions" or "behavior_ophys_experiments"."""
    layout = load_layout(release, version)
    passive_ids = {
        r["ophys_experiment_id"]
        for r in read_table(release, version, "ophys_experiment_table")
        if r["passive"] == "True"
    }
    for key in layout["data_files"].values():
        ident = re.search(r"_(\d+)\.nwb$", key).group(1)
        if f"/{kind}/" in key and (ident in passive_ids) == passive:
            return key, object_path(release, layout["objects"][key]["blake2b"])
    raise LookupError(kind)


def _read_nwb(path: Path):
    from pynwb import NWBHDF5IO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nwbio = NWBHDF5IO(str(path), "r")
        return nwbio, nwbio.read()


def test_nwb_files_read_with_pynwb(release):
    cells = read_table(release, "1.1.0", "ophys_cells_table")
    experiments = {
        r["ophys_experiment_id"]: r for r in read_table(release, "1.1.0", "ophys_experiment_table")
    }
    sessions = {
        r["behavior_session_id"]: r for r in read_table(release, "1.1.0", "behavior_session_table")
    }
    picks = [
        _sample_nwb(release, "behavior_sessions"),
        _sample_nwb(release, "behavior_ophys_experiments"),
    ]
    for key, path in picks:
        ident = re.search(r"_(\d+)\.nwb$", key).group(1)
        assert path.stat().st_size < 600_000
        nwbio, nwb = _read_nwb(path)
        with nwbio:
            assert nwb.identifier == ident
            meta = nwb.lab_meta_data["metadata"]
            row = sessions[str(meta.behavior_session_id)]
            assert nwb.session_description == meta.session_type == row["session_type"]
            assert nwb.subject.subject_id == row["mouse_id"] and nwb.subject.sex == row["sex"]
            assert nwb.subject.genotype == row["full_genotype"]
            assert meta.equipment_name == row["equipment_name"] and list(nwb.devices) == [
                row["equipment_name"]
            ]
            assert nwb.subject.reporter_line == row["reporter_line"]
            assert list(nwb.subject.driver_line) == ast.literal_eval(row["driver_line"])
            params = nwb.lab_meta_data["task_parameters"]
            assert list(params.response_window_sec) == ["0.15", "0.75"]
            for module, item in [
                ("stimulus", "timestamps"),
                ("running", "speed"),
                ("running", "speed_unfiltered"),
                ("running", "dx"),
                ("licking", "licks"),
                ("rewards", "volume"),
            ]:
                assert item in nwb.processing[module].data_interfaces, (module, item)
            trials = nwb.trials.to_dataframe()
            assert len(trials) == 16 and trials["hit"].sum() > 0
            assert trials["lick_times"].map(len).sum() == len(
                nwb.processing["licking"]["licks"].data
            )
            assert f"{params.stimulus_name}_presentations" in nwb.intervals
            assert list(nwb.stimulus_template) == [params.stimulus_name]
            eye = nwb.acquisition["EyeTracking"]
            assert eye.likely_blink.data[:].any()
            if "experiment" not in key:
                continue
            exp = experiments[ident]
            assert meta.ophys_experiment_id == int(ident)
            assert meta.ophys_session_id == int(exp["ophys_session_id"])
            assert meta.ophys_container_id == int(exp["ophys_container_id"])
            assert meta.imaging_depth == int(exp["imaging_depth"])
            assert nwb.imaging_planes["imaging_plane_1"].location == exp["targeted_structure"]
            ophys = nwb.processing["ophys"]
            table = ophys["image_segmentation"]["cell_specimen_table"].to_dataframe()
            mine = {
                int(c["cell_roi_id"]): int(c["cell_specimen_id"])
                for c in cells
                if c["ophys_experiment_id"] == ident
            }
            valid = table[table["valid_roi"]]
            assert dict(zip(valid.index, valid["cell_specimen_id"], strict=True)) == mine
            assert (table.loc[~table["valid_roi"], "cell_specimen_id"] == -1).all()
            assert not set(table.index[~table["valid_roi"]]) & {
                int(c["cell_roi_id"]) for c in cells
            }
            frames, n = ophys["dff"]["traces"].data.shape
            assert n == len(table) and frames == len(ophys["dff"]["traces"].timestamps)
            assert ophys["event_detection"].data.shape == (frames, n)
            assert len(ophys["event_detection"].lambdas) == n
            masks = table["image_mask"].iloc[0]
            assert masks.shape == ophys["images"]["max_projection"].data.shape and masks.any()
            images = ophys["images"].images
            assert {"max_projection", "average_image", "segmentation_mask_image"} <= set(images)
    bodies = [path.read_bytes() for _, path in picks]
    assert bodies[0] != bodies[1]


def test_passive_session_has_no_licks_or_rewards(release):
    _, path = _sample_nwb(release, "behavior_ophys_experiments", passive=True)
    nwbio, nwb = _read_nwb(path)
    with nwbio:
        assert "passive" in nwb.session_description
        assert "licking" not in nwb.processing and "rewards" not in nwb.processing
        trials = nwb.trials.to_dataframe()
        assert not trials["hit"].any() and not trials["aborted"].any()
        assert (trials["reward_volume"] == 0).all() and trials["lick_times"].map(len).sum() == 0


def test_session_values_are_consistent(release):
    """Trials, flashes, licks and rewards tell one story, as the analysis views expect."""
    import h5py
    import numpy as np

    _, path = _sample_nwb(release, "behavior_sessions")
    with h5py.File(path, "r") as f:
        trials = f["intervals/trials"]
        go, catch, aborted = (trials[c][:] for c in ("go", "catch", "aborted"))
        hit, miss, auto = (trials[c][:] for c in ("hit", "miss", "auto_rewarded"))
        assert (
            not (go & catch).any()
            and (hit | miss).sum() == go.sum()
            and auto.any()
            and aborted.any()
        )
        assert (trials["change_frame"][:][aborted] == -99).all()
        rewards = f["processing/rewards/volume/timestamps"][:]
        assert len(rewards) == (hit | auto).sum()
        assert np.allclose(np.sort(trials["reward_time"][:][hit | auto]), rewards)
        name = f["general/task_parameters"].attrs["stimulus_name"]
        flashes = f[f"intervals/{name}_presentations"]
        images = flashes["image_name"].asstr()[:]
        shown = images != "omitted"
        changes = np.flatnonzero(flashes["is_change"][:] == 1)
        assert len(changes) == (trials["is_change"][:]).sum()
        assert all(images[i] != images[:i][shown[:i]][-1] for i in changes)
        frames = flashes["start_frame"][:]
        assert set(trials["change_frame"][:][trials["is_change"][:]]) == set(frames[changes])
        clock = f["processing/stimulus/timestamps/timestamps"][:]
        assert np.array_equal(flashes["start_time"][:], clock[frames])
        licks = f["processing/licking/licks"]
        assert np.array_equal(licks["timestamps"][:], clock[licks["data"][:]])
        assert f["stimulus/templates"][name]["control_description"].shape == (
            f["stimulus/templates"][name]["data"].shape[0],
        )


def _typed_paths(path: Path) -> dict[str, tuple[str, str]]:
    """Every HDF5 path with a neurodata_type: (namespace, type), image set and rig names masked."""
    import h5py

    found = {}

    def visit(name, obj):
        kind = obj.attrs.get("neurodata_type")
        if kind is not None and not name.startswith("specifications"):
            name = re.sub(
                r"(Natural_Images_Lum_Matched_set_[\w.]+?|grating)(?=_presentations|$|/)",
                "<set>",
                name,
            )
            name = re.sub(r"^general/devices/[^/]+", "general/devices/<rig>", name)
            found[name] = (obj.attrs["namespace"], kind)

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


@pytest.mark.parametrize(
    "kind, fixture",
    [
        ("behavior_sessions", "behavior_session_800000012.nwb"),
        ("behavior_ophys_experiments", "behavior_ophys_experiment_900000013.nwb"),
    ],
)
def test_nwb_layout_matches_the_release(release, kind, fixture):
    """Same groups, neurodata types and dtypes as the files AllenSDK's writers produce."""
    import h5py

    if not (FIXTURES / fixture).is_file():
        pytest.skip("the NWB fixtures are not there")
    _, path = _sample_nwb(release, kind)
    ours, theirs = _typed_paths(path), _typed_paths(FIXTURES / fixture)
    # A ragged lick_times has its index; the experiment fixture's trials hold one lick each,
    # so AllenSDK wrote that column flat.
    assert set(ours) - set(theirs) <= {"intervals/trials/lick_times_index"}
    assert set(theirs) <= set(ours)
    assert {k: ours[k] for k in theirs} == theirs
    with h5py.File(path, "r") as a, h5py.File(FIXTURES / fixture, "r") as b:
        datasets = []
        b.visititems(
            lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        sets = (
            a["general/task_parameters"].attrs["stimulus_name"],
            b["general/task_parameters"].attrs["stimulus_name"],
        )
        for name in datasets:
            if name.startswith("specifications") or name == "intervals/trials/lick_times":
                continue
            mine = name.replace(sets[1], sets[0])
            mine = re.sub(
                r"^general/devices/[^/]+",
                lambda _: "general/devices/" + next(iter(a["general/devices"])),
                mine,
            )
            assert mine in a, name
            assert a[mine].dtype == b[name].dtype, name
            assert a[mine].ndim == b[name].ndim, name
        for group in ("general/metadata", "general/task_parameters", "general/subject"):
            assert set(a[group].attrs) == set(b[group].attrs), group
            for attr, value in b[group].attrs.items():
                assert (
                    np.asarray(a[group].attrs[attr]).dtype.kind == np.asarray(value).dtype.kind
                ), attr
        namespaces = set(b["specifications"]) - {"core", "hdmf-common", "hdmf-experimental"}
        assert set(a["specifications"]) == namespaces
        for ns in namespaces:
            assert set(a["specifications"][ns]) == set(b["specifications"][ns])  # versions


@pytest.mark.slow
def test_scale_one_has_real_row_counts():
    """The full-size release, cached in .sample-cache (generated once, ~20 s)."""
    release = generate_release(REPO / ".sample-cache" / "scale-1.0", scale=1.0)
    counts = {
        (v, name): len(read_table(release, v, name))
        for v in ("1.0.0", "1.1.0")
        for name in ("behavior_session_table", "ophys_session_table", "ophys_experiment_table")
    }
    assert counts[("1.0.0", "behavior_session_table")] == 4787
    assert counts[("1.0.0", "ophys_session_table")] == 704
    assert counts[("1.0.0", "ophys_experiment_table")] == 1941
    assert counts[("1.1.0", "behavior_session_table")] == 4782
    assert counts[("1.1.0", "ophys_session_table")] == 703
    assert counts[("1.1.0", "ophys_experiment_table")] == 1936
    cells = len(read_table(release, "1.1.0", "ophys_cells_table"))
    assert 125_000 < cells < 140_000


# --- the loopback S3 server -----------------------------------------------------------


def test_anonymous_versioned_gets_match_the_manifest(served):
    """Every entry of every manifest: plain GET with versionId, no credentials, right bytes."""
    session = requests.Session()
    for version in SAMPLE_VERSIONS:
        body = session.get(served.bucket_url + manifest_name(version)).content
        parsed = parse_manifest(body, manifest_name(version), version)  # the project's validator
        assert parsed.file_id_column == "file_id"
        doc = json.loads(body)
        assert list(doc) == [
            "project_name",
            "manifest_version",
            "metadata_file_id_column_name",
            "data_pipeline",
            "metadata_files",
            "data_files",
        ]
        assert doc["data_pipeline"][0]["name"] == "AllenSDK"
        for entry in [*doc["metadata_files"].values(), *doc["data_files"].values()]:
            assert list(entry) == ["url", "version_id", "file_hash"]
            assert entry["url"].startswith(PUBLIC_URL)
            key = entry["url"].removeprefix(PUBLIC_URL)
            response = session.get(
                served.bucket_url + key, params={"versionId": entry["version_id"]}
            )
            assert response.status_code == 200, key
            assert hashlib.blake2b(response.content).hexdigest() == entry["file_hash"], key
            assert response.headers["x-amz-meta-blake2b"] == entry["file_hash"]
        # HEAD and ranged GETs (a resumed download) work anonymously too.
        url, params = served.bucket_url + key, {"versionId": entry["version_id"]}
        head = session.head(url, params=params)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(
            response.content
        )
        part = session.get(url, params=params, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == response.content[10:20]


def test_unchanged_files_keep_their_version_ids(served, release):
    docs = {v: requests.get(served.bucket_url + manifest_name(v)).json() for v in SAMPLE_VERSIONS}
    for a, b in zip(SAMPLE_VERSIONS, SAMPLE_VERSIONS[1:], strict=False):
        old, new = load_layout(release, a)["objects"], load_layout(release, b)["objects"]
        entries = {
            v: {
                e["url"].removeprefix(PUBLIC_URL): e
                for e in [*docs[v]["metadata_files"].values(), *docs[v]["data_files"].values()]
            }
            for v in (a, b)
        }
        same = [k for k in entries[b] if k in entries[a] and old[k] == new[k]]
        changed = [k for k in entries[b] if k in entries[a] and old[k] != new[k]]
        assert same and changed
        for key in same:
            assert entries[a][key]["version_id"] == entries[b][key]["version_id"], key
        for key in changed:
            assert entries[a][key]["version_id"] != entries[b][key]["version_id"], key
            for v in (a, b):  # both versions stay downloadable
                url = served.bucket_url + key
                got = requests.get(url, params={"versionId": entries[v][key]["version_id"]})
                assert hashlib.blake2b(got.content).hexdigest() == entries[v][key]["file_hash"]


def test_publishing_in_stages_and_again(served, staged):
    first, second, before, after = staged
    assert first == second == served.endpoint_url + "/staged/"
    assert sorted(before) == [manifest_name("0.3.0"), manifest_name("1.0.0")]
    assert sorted(after) == [manifest_name(v) for v in SAMPLE_VERSIONS]
    # Publishing more versions leaves what was published as it was.
    for key, doc in before.items():
        assert after[key] == doc
    # Publishing everything again uploads nothing.
    client = s3_client(served.endpoint_url)
    pages = client.get_paginator("list_object_versions").paginate(Bucket="staged")
    uploads = sum(len(p.get("Versions", [])) for p in pages)
    publish(served.release, served.endpoint_url, bucket="staged")
    pages = client.get_paginator("list_object_versions").paginate(Bucket="staged")
    assert sum(len(p.get("Versions", [])) for p in pages) == uploads


def test_put_object_for_bad_input(served):
    body = b'{"not": "a manifest"}'
    key = manifest_name("9.9.9")
    create_bucket(served.endpoint_url, "bad-input")  # its own: the tests run in any order
    version_id = put_object(served.endpoint_url, key, body, bucket="bad-input")
    got = requests.get(served.endpoint_url + "/bad-input/" + key, params={"versionId": version_id})
    assert got.content == body
    # A broken manifest in the bucket does not stop later publishing.
    publish(served.release, served.endpoint_url, ["1.1.0"], bucket="bad-input")


def test_in_process_server():
    server, endpoint = start_server(in_process=True)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
        client = s3_client(endpoint)
        client.create_bucket(
            Bucket="inproc", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        client.put_bucket_versioning(Bucket="inproc", VersioningConfiguration={"Status": "Enabled"})
        version_id = put_object(endpoint, PREFIX + "x.txt", b"hello", bucket="inproc")
        url, params = f"{endpoint}/inproc/{PREFIX}x.txt", {"versionId": version_id}
        assert requests.get(url, params=params).status_code == 403  # private, as on S3
        assert create_bucket(endpoint, "inproc") == f"{endpoint}/inproc/"  # adds the policy
        got = requests.get(url, params=params)
        assert got.status_code == 200 and got.content == b"hello"
    finally:
        server.stop()

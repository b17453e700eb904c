"""AllenSDK's project cache over a catalog: the tutorial's calls, against the loopback server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest
from faultproxy import FaultProxy

from intake_vbo import BehaviorCloudCacheVersionException, VisualBehaviorOphysProjectCache
from intake_vbo.base.errors import VboError
from intake_vbo.catalog.release import manifest_name
from intake_vbo.nwb.experiment import BehaviorOphysExperiment
from intake_vbo.nwb.session import BehaviorSession
from intake_vbo.sample.release import SAMPLE_VERSIONS

NAMES = [manifest_name(v) for v in SAMPLE_VERSIONS]


@pytest.fixture
def served(bucket_url, monkeypatch):
    monkeypatch.setenv("VBO_BUCKET_URL", bucket_url)
    monkeypatch.delenv("VBO_CACHE_DIR", raising=False)
    return bucket_url


def test_from_s3_cache_builds_the_latest_only_then_what_is_asked(served, tmp_path):
    cache = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=tmp_path)
    assert cache.list_manifest_file_names() == NAMES
    assert cache.latest_manifest_file() == NAMES[-1]
    assert cache.list_all_downloaded_manifests() == [NAMES[-1]]
    assert cache.latest_downloaded_manifest_file() == NAMES[-1]
    assert cache.current_manifest() == NAMES[-1]
    latest = cache.get_ophys_experiment_table()

    assert cache.load_manifest(NAMES[0]) is None
    assert cache.current_manifest() == NAMES[0]
    assert cache.list_all_downloaded_manifests() == [NAMES[0], NAMES[-1]]
    oldest = cache.get_ophys_experiment_table()
    assert oldest.index.name == latest.index.name == "ophys_experiment_id"
    assert set(latest.columns) != set(oldest.columns)  # versions differ in columns
    with pytest.raises(VboError, match="no ophys_cells table"):
        cache.get_ophys_cells_table()  # 0.x had no cells table

    cache.load_latest_manifest()
    assert cache.current_manifest() == NAMES[-1]
    assert len(cache.get_ophys_cells_table()) > 0
    suppressed = cache.get_behavior_session_table(suppress=["mouse_id"])
    assert "mouse_id" not in suppressed and len(suppressed) > 0


def test_a_mirror_named_after_the_first_build_serves_later_manifests(
    served, s3_endpoint, tmp_path, monkeypatch
):
    cache = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=tmp_path)
    with FaultProxy(s3_endpoint) as mirror:  # the same bucket, behind another address
        monkeypatch.setenv("VBO_BUCKET_URL", mirror.url + served[len(s3_endpoint) :])
        cache.load_manifest(NAMES[0])
    asked = [r.path for r in mirror.log]
    assert any("/manifests/" in p for p in asked) and any("/project_metadata/" in p for p in asked)
    assert cache.current_manifest() == NAMES[0]


def test_a_cache_directory_serves_the_manifest_last_used_there(served, tmp_path):
    first = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=tmp_path)
    assert first.current_manifest() == NAMES[-1]  # an empty directory: the latest
    first.load_manifest(NAMES[1])
    assert (tmp_path / "_manifest_last_used.txt").read_text().strip() == NAMES[1]
    with pytest.warns(UserWarning) as warned:
        again = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=tmp_path)
    assert again.current_manifest() == NAMES[1]  # not silently the newest
    (message,) = [str(w.message) for w in warned]
    assert NAMES[1] in message and NAMES[-1] in message and "\n" not in message
    assert len(again.get_ophys_experiment_table()) > 0
    again.load_latest_manifest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the latest again: nothing to warn about
        latest = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=tmp_path)
    assert latest.current_manifest() == NAMES[-1]


def test_compare_manifests_is_readable_and_empty_only_without_changes(served, tmp_path):
    cache = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=tmp_path)
    text = cache.compare_manifests(NAMES[0], NAMES[1])
    assert text.startswith(f"Changes going from\n{NAMES[0]}\nto\n{NAMES[1]}\n")
    assert "behavior_sessions:" in text and " changed" in text
    assert cache.compare_manifests(NAMES[1], NAMES[1]) == ""
    with pytest.raises(VboError, match="not a manifest name"):
        cache.load_manifest("v1.1.0")


def test_getters_fetch_into_cache_dir_and_return_analysis_objects(served, tmp_path):
    cache = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=tmp_path)
    experiments = cache.get_ophys_experiment_table()
    sessions = cache.get_behavior_session_table()
    experiment = cache.get_behavior_ophys_experiment(ophys_experiment_id=int(experiments.index[0]))
    assert isinstance(experiment, BehaviorOphysExperiment)
    assert experiment.ophys_experiment_id == int(experiments.index[0])
    assert len(experiment.list_data_attributes_and_methods()) == 34
    assert experiment.max_projection.data.ndim == 2
    session = cache.get_behavior_session(behavior_session_id=int(sessions.index[0]))
    assert isinstance(session, BehaviorSession)
    assert session.behavior_session_id == int(sessions.index[0])
    assert len(session.list_data_attributes_and_methods()) == 16
    assert len(list((tmp_path / "blake2b").rglob("*.nwb"))) == 2


def test_from_catalog_is_read_only(served, catalog_dir):
    cache = VisualBehaviorOphysProjectCache.from_catalog(catalog_dir / "catalog.yaml")
    assert cache.list_all_downloaded_manifests() == NAMES
    assert cache.list_manifest_file_names() == NAMES
    with pytest.raises(VboError, match="is not in"):
        cache.load_manifest(manifest_name("9.9.9"))
    with pytest.raises(VboError, match="no catalog here"):
        VisualBehaviorOphysProjectCache.from_catalog(catalog_dir / "nowhere")


def test_the_tutorial_runs_with_only_its_imports_changed(served, tmp_path):
    """AllenSDK's data-access tutorial, in order, with sample names and ids.

    The tutorial loops over every session and experiment; here over the first few.
    """
    script = textwrap.dedent(f"""
        from intake_vbo import VisualBehaviorOphysProjectCache
        from intake_vbo import BehaviorCloudCacheVersionException

        cache = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir={str(tmp_path)!r})
        print(cache.list_manifest_file_names())
        print(cache.latest_manifest_file())
        print(cache.latest_downloaded_manifest_file())
        print(cache.list_all_downloaded_manifests())
        print(cache.current_manifest())
        try:
            cache.load_manifest({NAMES[0]!r})
        except BehaviorCloudCacheVersionException as err:
            print(err)
        cache.load_manifest(cache.latest_manifest_file())
        print(cache.compare_manifests({NAMES[0]!r}, {NAMES[1]!r}))
        behavior_sessions = cache.get_behavior_session_table()
        ophys_sessions = cache.get_ophys_session_table()
        ophys_experiments = cache.get_ophys_experiment_table()
        session = cache.get_behavior_session(behavior_session_id=int(behavior_sessions.index[0]))
        print(session.list_data_attributes_and_methods())
        templates = session.stimulus_templates
        image_name = templates.index[0]
        print(templates["warped"][image_name].shape)
        experiment = cache.get_behavior_ophys_experiment(
            ophys_experiment_id=int(ophys_experiments.index[0])
        )
        print(experiment.list_data_attributes_and_methods())
        print(experiment.max_projection.data.shape)
        for behavior_session_id in behavior_sessions.index[:5]:
            cache.get_behavior_session(behavior_session_id=behavior_session_id)
        for ophys_experiment_id in ophys_experiments.index[:5]:
            cache.get_behavior_ophys_experiment(ophys_experiment_id=ophys_experiment_id)
        print("tutorial done")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("tutorial done")
    assert NAMES[-1] in done.stdout and "Changes going from" in done.stdout
    assert issubclass(BehaviorCloudCacheVersionException, Exception)

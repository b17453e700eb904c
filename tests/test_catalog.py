"""The catalog files: settings kept as data, escaped, and rewritten by a newer format."""

from __future__ import annotations

import intake
import pytest
import yaml
from conftest import snapshot

from intake_vbo.catalog import record
from intake_vbo.catalog.build import build
from intake_vbo.sample.release import SAMPLE_VERSIONS


@pytest.fixture
def one_version(new_bucket):
    return new_bucket([SAMPLE_VERSIONS[0]])


def test_cache_path_with_quotes_and_colons_survives(one_version, tmp_path):
    awkward = tmp_path / 'lab\'s "vbo": cache #1 {x}'
    out = tmp_path / "cat"
    build(out, one_version, cache_dir=str(awkward))
    cat = intake.open_catalog(str(out / "catalog.yaml"))
    assert cat.metadata["intake_vbo"]["cache_dir"] == str(awkward)
    source = cat.latest.ophys_experiment(ophys_experiment_id=1)
    assert source.cache_dir == str(awkward)
    assert source.bucket_url == one_version
    assert len(cat.latest.ophys_experiments.read()) > 0


def test_root_catalog_records_its_format(one_version, tmp_path):
    out = tmp_path / "cat"
    build(out, one_version)
    settings = record.read_settings(out)
    assert settings.format == record.CATALOG_FORMAT
    assert settings.versions == [SAMPLE_VERSIONS[0]]


def test_a_newer_format_rewrites_catalog_files_without_refetching(one_version, tmp_path):
    out = tmp_path / "cat"
    build(out, one_version)
    # What an older intake-vbo wrote: another format, one source fewer.
    root, version_yaml = out / record.ROOT_CATALOG, next((out / "versions").iterdir())
    doc = yaml.safe_load(root.read_text())
    doc["metadata"]["intake_vbo"]["format"] = record.CATALOG_FORMAT - 1
    root.write_text(yaml.safe_dump(doc))
    old = yaml.safe_load(version_yaml.read_text())
    del old["sources"]["behavior_session"]
    version_yaml.write_text(yaml.safe_dump(old))
    before = snapshot(out)

    report = build(out, one_version)
    assert report.built == []  # no manifest changed: nothing fetched or re-indexed
    after = snapshot(out)
    assert record.read_settings(out).format == record.CATALOG_FORMAT
    assert "behavior_session" in yaml.safe_load(version_yaml.read_text())["sources"]
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {record.ROOT_CATALOG, f"versions/{version_yaml.name}"}
    # and the next build is a no-op again
    build(out, one_version)
    assert snapshot(out) == after


def test_no_catalog_here_is_one_line(tmp_path):
    from intake_vbo.base.errors import VboError

    with pytest.raises(VboError, match="no catalog here") as info:
        record.read_settings(tmp_path)
    assert "\n" not in str(info.value)


def test_catalogs_name_drivers_by_entry_point_never_by_module(catalog_dir):
    """Moving a driver's module needs no new catalog format: YAMLs hold entry-point names."""
    from importlib.metadata import entry_points

    ours = {
        ep.name: ep for ep in entry_points(group="intake.drivers") if ep.name.startswith("vbo_")
    }
    named = set()
    for path in [catalog_dir / record.ROOT_CATALOG, *(catalog_dir / "versions").iterdir()]:
        sources = yaml.safe_load(path.read_text())["sources"]
        named |= {source["driver"] for source in sources.values()}
    assert named - {"yaml_file_cat"} == set(ours) == {"vbo_table", "vbo_nwb", "vbo_nwb_tables"}
    for ep in ours.values():
        assert ep.value.startswith("intake_vbo.drivers.") and ep.load().name == ep.name

"""`intake-vbo demo` (what `make demo` runs), end to end at a small scale."""

import pytest

from intake_vbo.cli import main
from intake_vbo.sample.release import SAMPLE_VERSIONS


@pytest.mark.slow
def test_demo_runs_the_whole_job(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--scale", "0.02"]) == 0
    out = capsys.readouterr().out
    names = ", ".join(repr("v" + v.replace(".", "_")) for v in SAMPLE_VERSIONS)
    assert f"list(cat) = ['latest', {names}]" in out
    assert "rebuild: 0 versions rewritten" in out
    assert f"{SAMPLE_VERSIONS[0]} -> {SAMPLE_VERSIONS[-1]}" in out
    assert "cached=False" in out and "<BehaviorOphysExperiment" in out
    assert "flashes_since_change" in out and "dff" in out  # the heads of two tables
    fetched = list((tmp_path / "cache").rglob("*.nwb"))
    assert len(fetched) == 1
    assert (tmp_path / "catalog" / "vbo.duckdb").is_file()
    (png,) = tmp_path.glob("max_projection_*.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 100

"""`intake-vbo demo` (what `make demo` runs), end to end at a small scale."""

from intake_vbo.cli import main
from intake_vbo.sample.release import SAMPLE_VERSIONS


def test_demo_runs_the_whole_job(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--scale", "0.02"]) == 0
    out = capsys.readouterr().out
    names = ", ".join(repr("v" + v.replace(".", "_")) for v in SAMPLE_VERSIONS)
    assert f"list(cat) = ['latest', {names}]" in out
    assert "rebuild: 0 versions rewritten" in out
    assert f"{SAMPLE_VERSIONS[0]} -> {SAMPLE_VERSIONS[-1]}" in out
    assert "cached=False" in out and "identifier=" in out
    fetched = list((tmp_path / "cache").rglob("*.nwb"))
    assert len(fetched) == 1
    assert (tmp_path / "catalog" / "vbo.duckdb").is_file()

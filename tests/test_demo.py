"""`intake-vbo demo` (what `make demo` runs), end to end at a small scale, and its figure."""

import re

import pytest
from shared import FIXTURES

from intake_vbo.base.display import png_size
from intake_vbo.cli import main
from intake_vbo.nwb.experiment import open_experiment
from intake_vbo.sample.figure import bar_length, experiment_figure, pick_trial
from intake_vbo.sample.release import SAMPLE_VERSIONS

EXPERIMENT = FIXTURES / "behavior_ophys_experiment_900000013.nwb"
READABLE = (1000, 500)  # pixels, at least: a figure a person reads, not a 64 x 64 thumbnail


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
    (png,) = tmp_path.glob("experiment_*.png")
    width, height = png_size(png.read_bytes())
    assert width >= READABLE[0] and height >= READABLE[1]
    assert f"-> {png}" in out
    # ids print as integers: the dF/F head's rows start with a cell_specimen_id, a cell_roi_id
    assert "e+09" not in out
    assert len(re.findall(r"^\d{9,}\s+\d{9,}\s+\[", out, re.MULTILINE)) == 5


@pytest.mark.skipif(not EXPERIMENT.is_file(), reason=f"no NWB fixtures at {FIXTURES}")
def test_figure_is_a_png_a_person_reads(tmp_path):
    with open_experiment(EXPERIMENT) as exp:
        path = experiment_figure(exp, tmp_path / "figure.png")
        hits = exp.trials.index[exp.trials.hit]
        assert pick_trial(exp.trials) == hits[0]
        assert pick_trial(exp.trials.assign(hit=False, go=False)) == exp.trials.index[0]
    width, height = png_size(path.read_bytes())
    assert width >= READABLE[0] and height >= READABLE[1]
    assert path.stat().st_size > 20_000  # drawn, not blank


def test_scale_bar_is_a_round_fifth_of_the_field():
    assert bar_length(400.0) == 50.0 and bar_length(50.0) == 10.0 and bar_length(1100.0) == 200.0

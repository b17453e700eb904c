"""Progress bars over every long loop of ours: downloads through the catalog, per-file table
reads, verify and adopt (the build's and ``fetch_many``'s bars are tested with them).

A bar is drawn in a notebook or on a terminal and left out otherwise; the tests make
``in_notebook`` say yes (as a Jupyter kernel would) and read the bar that tqdm writes.
"""

from __future__ import annotations

import intake
import pytest

from intake_vbo.base import progress
from intake_vbo.base.progress import progress_iter
from intake_vbo.transfer.cache import Cache
from intake_vbo.transfer.download import hash_file
from intake_vbo.transfer.upkeep import adopt, verify

pytestmark = pytest.mark.filterwarnings("ignore:Shell command not executed")  # intake's own


def last_bar(err: str, desc: str) -> str:
    """The final state of the bar labelled ``desc`` in what tqdm wrote to stderr."""
    states = [s for line in err.split("\n") for s in line.split("\r") if s.startswith(desc)]
    assert states, f"no {desc!r} bar in {err!r}"
    return states[-1]


@pytest.fixture
def notebook(monkeypatch):
    """This process as a Jupyter kernel, where bars are shown."""
    monkeypatch.setattr(progress, "in_notebook", lambda: True)


def test_progress_iter_yields_everything_and_counts_it(capsys):
    assert list(progress_iter(range(4), "walk", "file", show=True, total=4)) == [0, 1, 2, 3]
    assert "4/4" in last_bar(capsys.readouterr().err, "walk: 100%")
    assert list(progress_iter(["a", "b"], "quiet", show=False)) == ["a", "b"]
    assert "quiet" not in capsys.readouterr().err


def test_adopt_and_verify_show_a_bar_over_the_files(tmp_path, capsys, notebook):
    source = tmp_path / "allensdk"
    source.mkdir()
    files = []
    for i in range(3):
        files.append(source / f"behavior_session_{i}.nwb")
        files[-1].write_bytes(bytes([i]) * (1000 + i))
    cache = Cache(tmp_path / "cache")
    report = adopt(cache, source, {hash_file(f): ".nwb" for f in files})
    assert sorted(report.adopted) == sorted(files)
    assert "3/3" in last_bar(capsys.readouterr().err, "adopt: 100%")
    checked = verify(cache)
    assert len(checked.ok) == 3 and not checked.damaged
    assert "3/3" in last_bar(capsys.readouterr().err, "verify: 100%")
    verify(cache, progress=False)
    assert "verify" not in capsys.readouterr().err


def test_catalog_downloads_and_table_reads_show_a_bar(catalog_dir, tmp_path, monkeypatch,
                                                      capsys, notebook):  # fmt: skip
    monkeypatch.setenv("VBO_CACHE_DIR", str(tmp_path / "cache"))  # a cold cache
    cat = intake.open_catalog(str(catalog_dir / "catalog.yaml"))
    first, second = cat.latest.ophys_experiments.read().index[:2]
    source = cat.latest.ophys_experiment(ophys_experiment_id=int(first))
    with source.read() as exp:
        assert int(exp.ophys_experiment_id) == first
    assert "B/s" in last_bar(capsys.readouterr().err, "fetch: 100%")
    source.read().close()  # cached now: no download, no bar
    assert "fetch" not in capsys.readouterr().err
    trials = cat.latest.ophys_experiment_tables(
        table="trials", ophys_experiment_ids=[int(first), int(second)]
    ).read()
    assert set(trials.ophys_experiment_id) == {first, second}
    err = capsys.readouterr().err
    assert "2/2" in last_bar(err, "read trials: 100%")

"""The layers show in the tree and data flows one way: no import climbs, none circles."""

from __future__ import annotations

import shutil
from pathlib import Path

from layers import cycles, imports, layer, violations

PACKAGE = Path(__file__).resolve().parents[1] / "intake_vbo"


def test_no_module_imports_a_higher_layer_or_a_sibling():
    assert violations(imports(PACKAGE)) == []


def test_no_import_cycle_anywhere_in_the_package():
    assert cycles(imports(PACKAGE)) == []


def test_every_module_belongs_to_a_known_layer():
    graph = imports(PACKAGE)
    top = {m for m in graph if layer(m) == "facade"}
    assert top == {"intake_vbo", "intake_vbo.cli", "intake_vbo.projectcache"}


def test_a_planted_back_edge_is_caught(tmp_path):
    copy = tmp_path / "intake_vbo"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    cache = copy / "transfer" / "cache.py"
    # a function-local import counts as much as one at the top
    cache.write_text(cache.read_text() + "\n\ndef _planted():\n    from ..drivers import resolve\n")
    found = violations(imports(copy))
    assert found == [
        "intake_vbo.transfer.cache -> intake_vbo.drivers.resolve: "
        "transfer imports the higher layer drivers"
    ]
    assert cycles(imports(copy))  # resolve imports the cache: a circle too


def test_a_planted_sibling_edge_and_a_circle_in_one_layer_are_caught(tmp_path):
    copy = tmp_path / "intake_vbo"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    nwb = copy / "nwb" / "conventions.py"
    nwb.write_text(nwb.read_text() + "\nfrom ..catalog import schema  # noqa\n")
    http = copy / "transfer" / "http.py"
    http.write_text(http.read_text() + "\n\ndef _planted():\n    from . import cache\n")
    graph = imports(copy)
    assert violations(graph) == [
        "intake_vbo.nwb.conventions -> intake_vbo.catalog.schema: nwb and catalog are siblings"
    ]
    circle = {"intake_vbo.transfer.http", "intake_vbo.transfer.cache"}
    assert any(circle <= set(c) for c in cycles(graph))

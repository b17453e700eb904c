"""The tutorials in docs/: executed through a real Jupyter kernel, AllenSDK's values.

``tests/data/allensdk_notebooks.json`` holds the key values (``tests/notebook_keys.py``)
that AllenSDK 2.16.2 gives running the same notebooks' code over the same sample files
(``tests/data/export_notebooks.py``). The quick tests read the committed notebooks: every
cell executed, no error, no port or temporary path, and the printed values AllenSDK's. The
slow ones execute each notebook in a temporary copy, against the loopback S3 server, and
compare every key value.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import pytest
from notebook_keys import KEYS, differences

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
EXPECTED = json.loads((REPO / "tests" / "data" / "allensdk_notebooks.json").read_text())
NAMES = list(KEYS)
FLOAT_ID = re.compile(r"\b\d\.\d{6}e\+0[89]\b")  # an id printed as a float: 1.086001e+09
RUN_SPECIFIC = re.compile(r"(127\.0\.0\.1|localhost):\d+|/tmp/|vbo-notebook-|pytest-of-")


def _texts(k: dict) -> dict[str, list[str]]:
    """Per notebook, what its committed outputs must show, from AllenSDK's key values."""
    return {
        "01_data_access": [
            f"Total number of behavior sessions: {k['01_data_access']['n_behavior_sessions']}",
            f"behavior + ophys sessions: {k['01_data_access']['n_ophys_sessions']}",
            f"behavior ophys experiments: {k['01_data_access']['n_ophys_experiments']}",
            str(k["01_data_access"]["session_attributes"]),
            f"{k['01_data_access']['n_session_files']} behavior session files",
        ],
        "02_dataset_manifest": [
            f"Total number of behavior sessions: {k['02_dataset_manifest']['n_behavior_sessions']}",
            f"there are {k['02_dataset_manifest']['n_mice']} mice in the dataset",
            f"Total number of ophys experiments: {k['02_dataset_manifest']['n_ophys_experiments']}",
            f"{k['02_dataset_manifest']['container']} ",
        ],
        "03_load_ophys_data": [
            f"Number of experiments: {k['03_load_ophys_data']['n_selected']}",
            "This array contains dff traces from {} neurons and it is {} samples long.".format(
                *k["03_load_ophys_data"]["dff_shape"]
            ),
            f"This experiment had {k['03_load_ophys_data']['n_stimuli']} stimuli.",
            f"{k['03_load_ophys_data']['n_omitted']} were omitted.",
        ],
        "04_mouse_history": [
            f"{len(k['04_mouse_history']['session_ids'])} sessions loaded",
        ],
        "05_compare_trial_types": [
            f"experiment_id {k['05_compare_trial_types']['experiment_id']}",
            f"'hit_trial_count': {k['05_compare_trial_types']['metrics']['hit_trial_count']}",
        ],
    }


# The performance metrics each notebook displays as a dict (``'name': value``), by key
SHOWN_METRICS = {"04_mouse_history": "metrics", "05_compare_trial_types": "metrics"}


def _shown_numbers(text: str, expected: dict) -> dict:
    """The value the outputs show for each of ``expected``'s names (``'name': number``)."""
    shown = {}
    for name in expected:
        found = re.search(rf"'{name}': (-?[0-9.e+-]+|nan)", text)
        shown[name] = float(found.group(1)) if found else None
    return shown


def _outputs_text(notebook: dict) -> str:
    """Every text a notebook's outputs show (streams, text reprs, errors)."""
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/"):
                    parts.append("".join(value))
            parts += output.get("traceback", [])
    return "\n".join(parts)


# The HTML reprs each notebook shows (a cell whose last expression is the object)
SHOWN_REPRS = {
    "01_data_access": [
        "BehaviorOphysExperiment",
        "BehaviorSession",
        "VisualBehaviorOphysProjectCache",
    ],
    "02_dataset_manifest": [],
    "03_load_ophys_data": ["BehaviorOphysExperiment"],
    "04_mouse_history": ["BehaviorSession"],
    "05_compare_trial_types": ["BehaviorOphysExperiment"],
}
CAPTION = re.compile(r"<caption[^>]*><b>(\w+)(?: (\d+))?</b>")
THUMBNAIL = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" width="(\d+)"')


def _check_reprs(notebook: dict, name: str) -> None:
    """The notebook shows our HTML reprs: their kinds, integer ids, a PNG per experiment."""
    shown = [
        "".join(o["data"]["text/html"])
        for c in notebook["cells"]
        for o in c.get("outputs", [])
        if 'class="vbo-repr"' in "".join(o.get("data", {}).get("text/html", ""))
    ]
    captions = [CAPTION.search(html).groups() for html in shown]
    assert sorted(kind for kind, _ in captions) == SHOWN_REPRS[name]
    for html, (kind, shown_id) in zip(shown, captions, strict=True):
        assert kind == "VisualBehaviorOphysProjectCache" or shown_id.isdigit()
        images = THUMBNAIL.findall(html)
        assert len(images) == (kind == "BehaviorOphysExperiment")
        for encoded, width in images:
            png = base64.b64decode(encoded)
            assert png.startswith(b"\x89PNG\r\n\x1a\n")
            assert struct.unpack(">I", png[16:20])[0] <= int(width)


def test_every_notebook_has_its_keys_and_allensdk_values():
    assert sorted(p.stem for p in DOCS.glob("*.ipynb")) == NAMES
    assert EXPECTED["allensdk"] == "2.16.2"
    assert {n: list(v) for n, v in EXPECTED["notebooks"].items()} == {
        n: list(v) for n, v in KEYS.items()
    }


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_notebook_ran_cleanly_and_shows_allensdk_values(name):
    notebook = json.loads((DOCS / f"{name}.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(isinstance(c["execution_count"], int) for c in code)
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    text = _outputs_text(notebook)
    assert not RUN_SPECIFIC.search(text), RUN_SPECIFIC.search(text)
    assert str(REPO) not in text
    assert not FLOAT_ID.search(text), FLOAT_ID.search(text)  # ids show as integers
    missing = [t for t in _texts(EXPECTED["notebooks"])[name] if t not in text]
    assert not missing
    if name in SHOWN_METRICS:  # AllenSDK's floats, within the last digits of a repr
        expected = EXPECTED["notebooks"][name][SHOWN_METRICS[name]]
        assert not differences(expected, _shown_numbers(text, expected))
    _check_reprs(notebook, name)


@pytest.mark.parametrize("name", NAMES)
def test_the_notebooks_import_only_our_cache(name):
    """The tutorial's code with only its import line changed: the export swaps exactly it."""
    from data.export_notebooks import OURS, allensdk_cells

    cells = allensdk_cells(DOCS / f"{name}.ipynb")
    assert not [c for c in cells if "intake_vbo" in c]
    assert all(theirs in "\n".join(cells) for theirs in OURS.values())


def test_scrub_removes_ports_paths_and_progress_bars(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from intake_vbo.sample.notebooks import scrub

    cell = new_code_cell("cache", metadata={"execution": {"iopub.status.busy": "now"}})
    cell.outputs = [
        new_output("stream", name="stderr", text="fetch: 100%|####| 2/2 [00:01<00:00, 1.5it/s]\n"),
        new_output("stream", name="stderr", text="\n"),
        new_output("stream", name="stderr", text="UserWarning: kept\n"),
        new_output(
            "stream", name="stdout", text=f"http://127.0.0.1:41234/b {tmp_path}/vbo_cache\n"
        ),
        new_output("execute_result", data={"text/plain": f"Cache('{tmp_path.resolve()}/c')"}),
    ]
    notebook = scrub(new_notebook(cells=[cell]), tmp_path)
    nbformat.validate(notebook)
    assert [o.get("text", o.get("data", {}).get("text/plain")) for o in cell.outputs] == [
        "UserWarning: kept\n",
        "http://127.0.0.1:PORT/b .../vbo_cache\n",
        "Cache('.../c')",
    ]
    assert "execution" not in cell.metadata


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_runs_in_a_kernel_and_gives_allensdk_values(name, bucket_url, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell

    from intake_vbo.sample.notebooks import execute, scrub

    notebook = nbformat.read(DOCS / f"{name}.ipynb", as_version=4)
    notebook.cells.append(
        new_code_cell(
            "import json, sys\n"
            f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
            "from notebook_keys import key_values\n"
            f"print('VBO-KEYS' + json.dumps(key_values({name!r}, globals())))"
        )
    )
    execute(notebook, bucket_url, tmp_path)
    (line,) = [t for t in notebook.cells[-1].outputs[0].text.splitlines() if "VBO-KEYS" in t]
    actual = json.loads(line.removeprefix("VBO-KEYS"))
    assert not differences(EXPECTED["notebooks"][name], actual)
    assert (tmp_path / "vbo_cache" / "catalog" / "catalog.yaml").exists()  # our cache, built
    text = _outputs_text(scrub(notebook, tmp_path))
    assert not RUN_SPECIFIC.search(text)
    _check_reprs(notebook, name)


def test_differences_tell_where_values_part():
    assert differences({"a": [1.0, "nan", 3]}, {"a": [1.0 + 1e-12, "nan", 3.0]}) == []
    assert differences({"a": [1.0, 2]}, {"a": [1.001, 2]}) == [".a[0]: 1.0 != 1.001"]
    assert differences({"a": True}, {"a": 1}) == [".a: True != 1"]
    assert differences({"a": [1]}, {"b": [1]}) == [": keys ['a'] != ['b']"]
    assert differences(["x", "y"], ["x"]) == [": 2 items != 1"]

"""Export what AllenSDK 2.16.2 gives for the key values of the tutorials in ``docs/``.

Run with the AllenSDK side venv, from the repository root, once the sample release is
generated (``make notebooks`` or ``make quick`` generates it)::

    python -m venv benchmarks/.allensdk-venv
    benchmarks/.allensdk-venv/bin/pip install allensdk==2.16.2 'hdmf<4'
    PYTHONHASHSEED=0 benchmarks/.allensdk-venv/bin/python tests/data/export_notebooks.py

It lays the sample release's latest version out in the bucket's layout (links to the
sample's objects, a manifest beside them) in a temporary directory, and runs each
notebook's code cells in order with AllenSDK: the two lines that name intake-vbo become
AllenSDK's (its import; ``from_local_cache(..., use_static_cache=True)`` over that copy in
place of ``from_s3_cache``, since AllenSDK cannot be pointed at a loopback server), and the
cells tagged ``intake-vbo-only`` are left out (those that load or compare the 0.x
manifests, which AllenSDK cannot load, and the import of ``integer_ids``, which only
changes how ids print). Then it evaluates ``tests/notebook_keys.py``'s keys
and writes them to ``tests/data/allensdk_notebooks.json``, which the tests compare with
intake-vbo's values in a Jupyter kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from notebook_keys import KEYS, key_values  # noqa: E402

OUT = REPO / "tests" / "data" / "allensdk_notebooks.json"
RELEASE = REPO / ".sample-cache" / "release-s0-x0.02"  # intake_vbo.sample.notebooks.SCALE
VERSION = "1.1.0"
BUCKET_HOST = "https://visual-behavior-ophys-data.s3.us-west-2.amazonaws.com/"
OURS = {
    "from intake_vbo import VisualBehaviorOphysProjectCache": (
        "from allensdk.brain_observatory.behavior.behavior_project_cache import "
        "VisualBehaviorOphysProjectCache"
    ),
    "VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=output_dir)": (
        "VisualBehaviorOphysProjectCache.from_local_cache(cache_dir=STATIC_COPY, "
        "use_static_cache=True)"
    ),
}
SKIP_TAG = "intake-vbo-only"


def static_copy(release: Path, root: Path) -> Path:
    """The sample's ``VERSION`` in the bucket's layout under ``root``, as links."""
    layout = json.loads((release / VERSION / "layout.json").read_text())
    for key, obj in layout["objects"].items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to((release / "objects" / obj["blake2b"]).resolve())

    def entry(key: str) -> dict:
        digest = layout["objects"][key]["blake2b"]
        return {"url": BUCKET_HOST + key, "version_id": "sample", "file_hash": digest}

    manifest = {
        "project_name": "visual-behavior-ophys",
        "manifest_version": VERSION,
        "metadata_file_id_column_name": "file_id",
        "data_pipeline": layout["data_pipeline"],
        "metadata_files": {name: entry(key) for name, key in layout["metadata_files"].items()},
        "data_files": {i: entry(key) for i, key in layout["data_files"].items()},
    }
    name = f"visual-behavior-ophys/manifests/visual-behavior-ophys_project_manifest_v{VERSION}.json"
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps(manifest))
    return root


def allensdk_cells(notebook: Path) -> list[str]:
    """The notebook's code cells as AllenSDK runs them (see the module docstring)."""
    cells = json.loads(notebook.read_text())["cells"]
    code = []
    for cell in cells:
        if cell["cell_type"] != "code" or SKIP_TAG in cell["metadata"].get("tags", []):
            continue
        code.append("".join(cell["source"]))
    text = "\n".join(code)
    for ours, theirs in OURS.items():
        if ours not in text:
            raise SystemExit(f"{notebook.name}: no {ours!r} to change")
        text = text.replace(ours, theirs)
    if "intake_vbo" in text:
        raise SystemExit(f"{notebook.name}: names intake_vbo beyond its import line")
    return [_swap(c) for c in code]


def _swap(cell: str) -> str:
    for ours, theirs in OURS.items():
        cell = cell.replace(ours, theirs)
    return cell


def run_notebook(notebook: Path, copy: Path) -> dict:
    """Run the notebook's cells with AllenSDK in a fresh namespace; return its key values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # integer_ids only changes how ids print; AllenSDK's run shows its frames as they are
    namespace = {"__name__": "__main__", "STATIC_COPY": str(copy), "integer_ids": lambda f: f}
    with tempfile.TemporaryDirectory() as workdir:
        here = os.getcwd()
        os.chdir(workdir)
        try:
            for source in allensdk_cells(notebook):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exec(compile(source, notebook.name, "exec"), namespace)
                plt.close("all")
            return key_values(notebook.stem, namespace)
        finally:
            os.chdir(here)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", type=Path, default=RELEASE)
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        raise SystemExit("set PYTHONHASHSEED=0 (AllenSDK's column order depends on it)")
    import allensdk

    result = {
        "format": "allensdk-notebooks/1",
        "allensdk": allensdk.__version__,
        "sample": {"release": args.release.name, "version": VERSION},
        "notebooks": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        copy = static_copy(args.release, Path(tmp) / "copy")
        for name in KEYS:
            print(f"running docs/{name}.ipynb with AllenSDK {allensdk.__version__}", flush=True)
            result["notebooks"][name] = run_notebook(REPO / "docs" / f"{name}.ipynb", copy)
    OUT.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

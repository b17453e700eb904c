"""``make notebooks``: the tutorials in ``docs/`` executed against the sample release.

Each notebook runs through a real Jupyter kernel (nbclient) in a temporary directory of its
own, with ``VBO_BUCKET_URL`` naming a loopback S3 server that serves the sample release
(:func:`intake_vbo.sample.s3.serve_sample`), so ``from_s3_cache`` builds and fetches from it
as it would from the real bucket. The outputs are written back into the notebook, scrubbed
of what changes from run to run: the server's port, the temporary paths, progress bars and
execution times. The tests (``tests/test_notebooks.py``) execute the same way.

Usage::

    python -m intake_vbo.sample.notebooks docs/*.ipynb [--sample-dir .sample-cache]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

# The sample release the tutorials' ids come from: the tests' scale and seed (tests/conftest.py)
SCALE = 0.02
KERNEL = "python3"
TIMEOUT = 900  # seconds a cell may take (a cold cache fetches a mouse's every session)
_PORT = re.compile(r"(127\.0\.0\.1|localhost):\d+")
# a text progress bar (tqdm's elapsed-time field), its missing-widget note, or what is
# left of a bar once drawn: whitespace alone
_BAR = re.compile(r"\[\d\d:\d\d|IProgress not found|^\s*$")
_WIDGET = "application/vnd.jupyter.widget-view+json"  # a live bar: nothing once saved


def execute(notebook, bucket_url: str, workdir: Path, timeout: int = TIMEOUT):
    """Run every cell of ``notebook`` (an nbformat node, changed in place) in ``workdir``.

    Parameters
    ----------
    notebook : nbformat.NotebookNode
        The notebook; its outputs are replaced by this run's.
    bucket_url : str
        Where the kernel's ``from_s3_cache`` reads the release (``VBO_BUCKET_URL``).
    workdir : Path
        The kernel's working directory: the notebook's relative ``output_dir`` lands here.
    timeout : int
        Seconds a cell may take.

    Returns
    -------
    nbformat.NotebookNode
        ``notebook``, executed. A cell that raises raises ``CellExecutionError``.
    """
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if not k.startswith("VBO_")}
    env.update(VBO_BUCKET_URL=bucket_url, MPLBACKEND="module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(workdir)}},
        record_timing=False,
    )
    return client.execute(env=env)


def scrub(notebook, *paths: str | Path):
    """Remove run-specific text from ``notebook``'s outputs (in place) and return it.

    Ports of loopback servers become ``PORT``, each of ``paths`` becomes ``...``; progress
    bars and execution counts' metadata are dropped, so a re-run changes no byte that the
    tutorial's values do not.
    """
    roots = sorted({str(p) for p in paths} | {str(Path(p).resolve()) for p in paths}, key=len)

    def clean(text: str) -> str:
        for root in reversed(roots):  # longest first: a resolved path may contain another
            text = text.replace(root, "...")
        return _PORT.sub(r"\1:PORT", text)

    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            progress = output.output_type == "stream" and output.name == "stderr"
            if progress and _BAR.search(output.text) or _WIDGET in output.get("data", {}):
                continue
            if output.output_type == "stream":
                output.text = clean(output.text)
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/") and isinstance(value, str):
                    output.data[kind] = clean(value)
            if "traceback" in output:
                output.traceback = [clean(line) for line in output.traceback]
            kept.append(output)
        cell.outputs = kept
    return notebook


def run(paths: list[Path], sample_dir: Path) -> None:
    """Execute each notebook against the sample release and write its outputs into it."""
    import nbformat

    from .s3 import serve_sample

    with serve_sample(sample_dir, scale=SCALE) as served:
        for path in paths:
            print(f"executing {path}", flush=True)
            notebook = nbformat.read(path, as_version=4)
            with tempfile.TemporaryDirectory(prefix="vbo-notebook-") as workdir:
                execute(notebook, served.bucket_url, Path(workdir))
                scrub(notebook, workdir, tempfile.gettempdir(), Path.cwd())
            nbformat.write(notebook, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--sample-dir",
        type=Path,
        default=Path(".sample-cache"),
        help="where the sample release is generated (reused when there)",
    )
    args = parser.parse_args(argv)
    run(args.notebooks, args.sample_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

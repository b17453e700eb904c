"""``read``: a fresh process reads ``latest.ophys_experiments``, ours against AllenSDK 2.16.2.

Both are timed from spawn to exit: interpreter start, imports, opening (our catalog
YAML; AllenSDK's ``from_s3_cache``, which lists the manifests and loads the latest) and
reading the table. AllenSDK runs twice over: cold (an empty cache directory, so it
downloads the manifest and the metadata CSVs from the loopback server) and warm (the
same cache directory again, filled).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import allensdk_venv
from common import BENCH, Row, child_env, last_json, run_timed

TARGET = 10.0  # ours at least 10x faster than AllenSDK (warm)
NAME = "read: fresh process, latest.ophys_experiments"


def run(catalog: Path, endpoint_url: str, repeat: int) -> list[Row]:
    """Time our read and AllenSDK's, cold and warm.

    Parameters
    ----------
    catalog : Path
        A catalog directory built from the loopback server.
    endpoint_url : str
        ``http://127.0.0.1:PORT``, for AllenSDK's boto3.
    repeat : int
        Repetitions per figure (the median is reported).

    Returns
    -------
    list of Row
    """
    cmd = [sys.executable, str(BENCH / "read_ours.py"), str(catalog / "catalog.yaml")]
    ours, info = _median([cmd] * repeat, child_env())
    with tempfile.TemporaryDirectory(prefix="vbo-bench-allensdk-") as tmp:
        try:
            (cold, cold_info), (warm, warm_info) = _allensdk(endpoint_url, Path(tmp), repeat)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1][:200]
            return [Row(NAME, ours, None, "AllenSDK 2.16.2", TARGET, faster=True,
                        note=f"AllenSDK could not run: {reason}")]  # fmt: skip
    note = f"{info['rows']} rows; ours: {_split(info)}; AllenSDK warm: {_split(warm_info)}"
    if warm_info["rows"] != info["rows"]:
        note += f"; ROW COUNTS DIFFER: AllenSDK read {warm_info['rows']}"
    return [
        Row(NAME, ours, warm, "AllenSDK warm cache", TARGET, faster=True, note=note),
        Row(NAME, ours, cold, "AllenSDK cold cache", faster=True,
            note=f"AllenSDK cold: {_split(cold_info)}; {cold_info['manifest']}"),
    ]  # fmt: skip


def _split(info: dict) -> str:
    """Where a child's time went, as it measured it (interpreter start not included)."""
    return f"import {info['import']:.2f} s, open {info['open']:.2f} s, read {info['read']:.2f} s"


def _allensdk(endpoint_url: str, tmp: Path, repeat: int):
    """Median cold and warm AllenSDK runs, each with what its last run reported."""
    python = str(allensdk_venv.ensure())
    env = child_env(
        AWS_ENDPOINT_URL_S3=endpoint_url,
        AWS_DEFAULT_REGION="us-west-2",
        AWS_ACCESS_KEY_ID="loopback",
        AWS_SECRET_ACCESS_KEY="loopback",
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    _check_loopback(python, env)
    script = str(BENCH / "read_allensdk.py")
    cold = _median([[python, script, str(tmp / f"cold-{i}")] for i in range(repeat)], env)
    warm = _median([[python, script, str(tmp / "cold-0")]] * repeat, env)  # filled by cold-0
    return cold, warm


def _check_loopback(python: str, env: dict) -> None:
    """Refuse to run AllenSDK unless its boto3 would talk to the loopback server."""
    code = "import boto3; print(boto3.client('s3').meta.endpoint_url)"
    _, out = run_timed([python, "-c", code], env)
    if not out.strip().startswith("http://127.0.0.1:"):
        raise RuntimeError(f"boto3 in the AllenSDK venv ignores AWS_ENDPOINT_URL_S3: {out!r}")


def _median(cmds: list[list[str]], env: dict) -> tuple[float, dict]:
    """Run each command once, in turn; the median time and the last run's report."""
    runs = [run_timed(cmd, env) for cmd in cmds]
    return statistics.median(t for t, _ in runs), last_json(runs[-1][1])

"""``build``: a full build of every version against pyarrow parsing the same bytes; no-op rebuilds.

The reference is the least any build must do once the bytes are in memory: parse each
manifest with :func:`json.loads` and each metadata CSV with :func:`pyarrow.csv.read_csv`.
The build also lists, fetches over HTTP, checks BLAKE2b hashes, types every column and
writes Parquet, the DuckDB index and the catalog YAMLs.
"""

from __future__ import annotations

import io
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from common import VENV_BIN, Row, child_env, median_time, run_timed

FULL_TARGET = 3.0  # the build within 3x of pyarrow alone
NOOP_TARGET = 0.5  # seconds


def fetch_release_bytes(bucket_url: str) -> tuple[list[bytes], list[tuple[str, bytes]]]:
    """Every manifest and every metadata CSV (with its name) of every version, in memory."""
    from intake_vbo.catalog import release
    from intake_vbo.catalog.manifest import parse_manifest

    manifests, csvs = [], []
    for version, obj in release.list_manifests(bucket_url).items():
        raw = release.fetch_manifest(bucket_url, version)
        manifests.append(raw)
        for entry in parse_manifest(raw, obj.key, version).metadata_files:
            data = release.fetch_verified(
                bucket_url, entry.key, entry.version_id, entry.file_hash, entry.name
            )
            csvs.append((entry.name, data))
    return manifests, csvs


def release_urls(bucket_url: str) -> list[str]:
    """The versioned URL of every manifest and metadata CSV (resolved once, untimed)."""
    from intake_vbo.catalog import release
    from intake_vbo.catalog.manifest import parse_manifest

    urls = []
    for version, obj in release.list_manifests(bucket_url).items():
        urls.append(release.object_url(bucket_url, obj.key))
        raw = release.fetch_manifest(bucket_url, version)
        for entry in parse_manifest(raw, obj.key, version).metadata_files:
            urls.append(release.object_url(bucket_url, entry.key, entry.version_id))
    return urls


def read_with_pyarrow(urls: list[str]) -> None:
    """The reference read from the server: GET every object (4 at once, as the build
    does), parse manifests with json and CSVs with pyarrow.csv, nothing else."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.csv
    import requests

    def one(url: str) -> None:
        body = requests.get(url, timeout=60).content
        if url.split("?")[0].endswith(".json"):
            json.loads(body)
        else:
            pyarrow.csv.read_csv(io.BytesIO(body))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, urls))


def parse_with_pyarrow(manifests: list[bytes], csvs: list[tuple[str, bytes]]) -> None:
    """The reference: parse the in-memory JSON and CSV bytes, nothing else."""
    import pyarrow.csv

    for raw in manifests:
        json.loads(raw)
    for _, raw in csvs:
        pyarrow.csv.read_csv(io.BytesIO(raw))


def type_tables(csvs: list[tuple[str, bytes]]) -> None:
    """What the build's typing step does to the same CSV bytes."""
    from intake_vbo.catalog.schema import CSV_TABLES
    from intake_vbo.catalog.tables import read_table

    for name, raw in csvs:
        read_table(CSV_TABLES[name], raw, name)


def run(bucket_url: str, repeat: int) -> list[Row]:
    """Time the full build, the reference and the two no-op rebuilds.

    Parameters
    ----------
    bucket_url : str
        The loopback bucket serving the sample release.
    repeat : int
        Repetitions per figure (the median is reported).

    Returns
    -------
    list of Row
    """
    from intake_vbo.catalog.build import build

    manifests, csvs = fetch_release_bytes(bucket_url)
    fetch = median_time(lambda: fetch_release_bytes(bucket_url), repeat)
    reference = median_time(lambda: parse_with_pyarrow(manifests, csvs), repeat)
    urls = release_urls(bucket_url)
    served = median_time(lambda: read_with_pyarrow(urls), repeat)
    csv_reference = median_time(lambda: parse_with_pyarrow([], csvs), repeat)
    typing = median_time(lambda: type_tables(csvs), repeat)
    size = sum(map(len, manifests)) + sum(len(raw) for _, raw in csvs)
    with tempfile.TemporaryDirectory(prefix="vbo-bench-build-") as tmp:
        out = Path(tmp) / "catalog"
        full = median_time(
            lambda: build(out, bucket_url),
            repeat,
            setup=lambda: shutil.rmtree(out, ignore_errors=True),
        )
        report = build(out, bucket_url)  # the catalog is complete: this one does nothing
        assert not report.built and report.unchanged, report
        noop = median_time(lambda: build(out, bucket_url), repeat)
        cmd = [str(VENV_BIN / "intake-vbo"), "build", "--out", str(out), "--bucket-url", bucket_url]
        noop_cli = _median_process(cmd, repeat)
    note = f"{len(manifests)} manifests + {len(csvs)} CSVs, {size / 1e6:.1f} MB"
    return [
        Row("build: full, all versions", full, served, "GET + pyarrow/json parse, same server",
            FULL_TARGET, faster=False, note=note),
        Row("build: full, all versions", full, reference, "pyarrow parse only, bytes in memory",
            FULL_TARGET, faster=False, note="the strictest reading of the target"),
        Row("build: fetching those bytes alone, one by one", fetch, reference,
            "pyarrow parse only", faster=False,
            note="context: the loopback server's share (moto), not a target"),
        Row("build: typing the CSVs alone (tables.read_table)", typing, csv_reference,
            "pyarrow.csv.read_csv only", FULL_TARGET, faster=False,
            note="the same CSV bytes in memory, no fetching or writing"),
        Row("build: no-op rebuild, in-process", noop, target=NOOP_TARGET,
            note="build() again, nothing new"),
        Row("build: no-op rebuild, `intake-vbo build`", noop_cli, target=NOOP_TARGET,
            note="fresh process, start-up included"),
    ]  # fmt: skip


def _median_process(cmd: list[str], repeat: int) -> float:
    return statistics.median(run_timed(cmd, env=child_env())[0] for _ in range(repeat))

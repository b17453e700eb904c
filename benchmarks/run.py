"""Benchmarks of the catalog build and read path, run on demand: ``make bench``.

Generates (or reuses) the full-scale sample release, serves it on a loopback S3 server,
runs the chosen benchmarks and prints one Markdown table: our figure, the reference
beside it, their ratio and the target. Only 127.0.0.1 is ever contacted.

Usage: ``.venv/bin/python benchmarks/run.py
[--only build,read,sql,cache,fetch,views,range,dask,local] [--repeat N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import bench_build
import bench_cache
import bench_dask
import bench_fetch
import bench_local
import bench_range
import bench_read
import bench_sql
import bench_views
from common import Row, load_average
from serve import sample_release, served

BENCHMARKS = ("build", "read", "sql", "cache", "fetch", "views", "range", "dask", "local")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks chosen on the command line and print the table."""
    args = _parser().parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        sys.exit(f"run.py: unknown benchmark(s) {', '.join(sorted(unknown))}; "
                 f"choose from {', '.join(BENCHMARKS)}")  # fmt: skip
    moto = bool(set(chosen) - {"fetch", "views", "range", "dask", "local"})  # serve their own
    release = None
    if moto:
        _progress("generating the full-scale sample release (cached in .sample-cache/)")
        release = sample_release()
        _progress("publishing it on a loopback S3 server")
    load_before = load_average()
    rows: list[Row] = []
    with (
        served(release) if moto else nullcontext() as endpoint,
        tempfile.TemporaryDirectory(prefix="vbo-bench-") as tmp,
    ):
        if "build" in chosen:
            _progress("build")
            rows += bench_build.run(endpoint.bucket_url, args.repeat)
        if {"read", "sql"} & set(chosen):
            from intake_vbo.catalog.build import build

            catalog = Path(tmp) / "catalog"
            build(catalog, endpoint.bucket_url)  # shared by read and sql, untimed
            if "read" in chosen:
                _progress("read (ours, then AllenSDK)")
                rows += bench_read.run(catalog, endpoint.endpoint_url, args.repeat)
            if "sql" in chosen:
                _progress("sql")
                rows += bench_sql.run(catalog, args.repeat)
        if "cache" in chosen:
            _progress("cache")
            rows += bench_cache.run(endpoint.endpoint_url, endpoint.bucket_url, args.repeat)
    if "fetch" in chosen:
        _progress("fetch (SeaweedFS; ours, curl, AllenSDK)")
        rows += bench_fetch.run(args.repeat)
    if "views" in chosen:
        _progress("views (the large experiment; ours, then AllenSDK)")
        rows += bench_views.run(args.repeat)
    if "range" in chosen:
        _progress("range (the large experiment over a shaped link; ours, curl, remfile)")
        rows += bench_range.run(args.repeat)
    if "dask" in chosen:
        _progress("dask (40 medium experiments over a shaped link; a loop, then 1-4 workers)")
        rows += bench_dask.run(args.repeat)
    if "local" in chosen:
        _progress("local (a read-only copy of the full-scale sample; ours, then AllenSDK)")
        release = release or sample_release()
        rows += bench_local.run(release, args.repeat)
    print(_header(args.repeat, load_before, release))
    print(format_table(rows))
    return 0


def format_table(rows: list[Row]) -> str:
    """The results as a Markdown table, notes below it."""
    lines = [
        "| benchmark | intake-vbo | reference | ratio | target | met? |",
        "| --- | ---: | --- | ---: | --- | --- |",
    ]
    notes = []
    for i, row in enumerate(rows, 1):
        reference = _value(row.reference, row.unit)
        if row.reference_name:
            reference += f" ({row.reference_name})"
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append(
            f"| {row.benchmark} [{i}] | {_value(row.ours, row.unit)} | {reference} | "
            f"{_ratio(row)} | {_target(row)} | {met} |"
        )
        if row.note:
            notes.append(f"[{i}] {row.note}")
    return "\n".join(lines + [""] + notes)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} s" if unit == "s" else f"{value:.0f} {unit}"


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return "-"
    return f"{row.ratio:.1f}x " + ("faster" if row.faster else _base(row))


def _target(row: Row) -> str:
    if row.target is None:
        return "-"
    if row.faster is None:
        return f"< {row.target:g} {row.unit}"
    return f">= {row.target:g}x faster" if row.faster else f"<= {row.target:g}x {_base(row)}"


def _base(row: Row) -> str:
    return "the time" if row.unit == "s" else "the reference"


def _header(repeat: int, load_before: str, release: Path | None) -> str:
    from intake_vbo.sample.release import generated_versions

    sample = (
        f"full-scale sample release ({', '.join(generated_versions(release))}); " if release else ""
    )
    return (
        f"intake-vbo benchmarks: median of N={repeat} runs; {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; {sample}"
        f"load average {load_before} before, {load_average()} after\n"
    )


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default all)",
    )
    p.add_argument("--repeat", type=int, default=5, metavar="N",
                   help="repetitions per figure; the median is reported (default 5)")  # fmt: skip
    return p


if __name__ == "__main__":
    sys.exit(main())

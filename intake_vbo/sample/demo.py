"""``intake-vbo demo``: the whole main job offline, end to end.

A sample release (real layout, formats and pynwb-written NWB files) is served by an
S3-compatible server on loopback; the demo builds a catalog from it, opens it with
intake, reads a table, queries every version in DuckDB, diffs two versions and
fetches one NWB file lazily into a verified cache, whose experiment it draws
(:mod:`.figure`) and prints, ids as integers.
"""

from __future__ import annotations

import time
from pathlib import Path

from .figure import experiment_figure  # matplotlib, from the demo extra too
from .s3 import serve_sample  # needs the demo extra: the CLI says so if it is missing


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_demo(workdir: Path, scale: float = 1.0) -> int:
    """Run the demo in ``workdir`` (sample release, catalog and cache go there)."""
    import intake
    import pandas as pd

    from ..base.display import integer_ids
    from ..catalog.build import build
    from ..catalog.index import connect, diff, diff_report
    from ..catalog.release import list_manifests

    workdir = Path(workdir).resolve()
    catalog_dir, cache_dir = workdir / "catalog", workdir / "cache"
    _step("publishing the sample release on a loopback S3 server (moto, versioned bucket)")
    start = time.perf_counter()
    with serve_sample(workdir / "sample", scale=scale) as server:
        print(f"bucket URL: {server.bucket_url}  ({time.perf_counter() - start:.1f} s)")
        listing = list_manifests(server.bucket_url)
        print("released versions:", ", ".join(listing), "(latest:", list(listing)[-1] + ")")

        _step(f"intake-vbo build --out {catalog_dir} --bucket-url {server.bucket_url}")
        report = build(catalog_dir, server.bucket_url, "all", str(cache_dir))
        print(f"built {', '.join(report.built) or 'nothing new'} in {report.seconds:.2f} s")
        report = build(catalog_dir, server.bucket_url, "all")
        print(f"rebuild: {len(report.built)} versions rewritten, {report.seconds:.2f} s")

        _step(f'cat = intake.open_catalog("{catalog_dir / "catalog.yaml"}")')
        cat = intake.open_catalog(str(catalog_dir / "catalog.yaml"))
        print("list(cat) =", list(cat))
        print("list(cat.latest) =", list(cat.latest))
        exps = cat.latest.ophys_experiments.read()
        print(f"latest.ophys_experiments.read(): {exps.shape[0]} rows x {exps.shape[1]} columns")
        with pd.option_context("display.width", 160, "display.max_columns", 8):
            print(exps[["mouse_id", "cre_line", "session_type", "date_of_acquisition"]].head())

        _step("DuckDB, across every version (the same file opens in the duckdb CLI)")
        con = connect(catalog_dir)
        print(
            con.sql(
                "SELECT manifest_version, count(*) AS behavior_sessions, "
                "count(DISTINCT mouse_id) AS mice FROM behavior_sessions "
                "GROUP BY ALL ORDER BY manifest_version"
            )
        )
        versions = [v for (v,) in con.sql("SELECT manifest_version FROM manifests").fetchall()]
        con.close()

        _step(f"intake-vbo diff {versions[0]} {versions[-1]}")
        print(diff_report(versions[0], versions[-1], *diff(catalog_dir, versions[0], versions[-1])))

        _step("an ophys experiment, fetched lazily (verified against the manifest's BLAKE2b)")
        first = int(exps.index[0])
        source = cat.latest.ophys_experiment(ophys_experiment_id=first)
        info = source.discover()["metadata"]
        print(f"ophys_experiment {first}: {info['key']} cached={info['cached']}")
        start = time.perf_counter()
        experiment = source.read()
        print(f"read() fetched and opened it in {time.perf_counter() - start:.2f} s: {experiment}")
        print(f"_repr_html_() for notebooks: {len(experiment._repr_html_())} characters")
        image = experiment.max_projection
        print(f"max_projection: {image.data.shape} {image.data.dtype}, spacing {image.spacing}"
              f" {image.unit}")  # fmt: skip
        figure = experiment_figure(experiment, workdir / f"experiment_{first}.png")
        print(f"figure (max projection, ROIs, one trial) -> {figure}")
        columns = ["image_name", "start_time", "end_time", "is_change", "flashes_since_change"]
        with pd.option_context("display.width", 160, "display.max_columns", 8):
            print(experiment.stimulus_presentations[columns].head())
            # cell_specimen_id is float64 where a file has unassigned ids: print integers
            print(integer_ids(experiment.dff_traces.head()))
        source.close()
    print("\ndemo done: catalog in", catalog_dir)
    return 0

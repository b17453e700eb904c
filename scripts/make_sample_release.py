#!/usr/bin/env python
"""Generate the sample release into a directory: every version, real formats, real NWB files."""

import argparse
import time
from pathlib import Path

from intake_vbo.sample import SAMPLE_VERSIONS, generate_release, load_layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="directory to write (reused when complete)")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = real row counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--versions", default=",".join(SAMPLE_VERSIONS), help="comma-separated X.Y.Z list"
    )
    args = parser.parse_args()
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    start = time.perf_counter()
    release = generate_release(args.out, versions, args.scale, args.seed)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (release / "objects").iterdir()) / 1e6
    print(f"{release}: {', '.join(versions)} ({size:.0f} MB, {seconds:.1f} s)")
    for version in versions:
        layout = load_layout(release, version)
        tables, files = len(layout["metadata_files"]), len(layout["data_files"])
        print(f"  {version}: {tables} tables, {files} NWB files")


if __name__ == "__main__":
    main()

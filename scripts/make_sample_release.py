#!/usr/bin/env python
"""Generate the sample release into a directory: every version, real formats, real NWB files."""

import argparse
import time
from pathlib import Path

from intake_vbo.sample.release import add_arguments, generate_release, load_layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="directory to write (reused when complete)")
    add_arguments(parser)
    args = parser.parse_args()
    versions = args.versions
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

#!/usr/bin/env python
"""Serve the sample release on a loopback S3 server until Ctrl-C.

Generates the release (cached in the work directory), starts moto's S3 server on a
free port of 127.0.0.1, publishes every version with its manifest, and prints the
bucket URL to give intake-vbo (``--bucket-url`` or ``VBO_BUCKET_URL``).
"""

import argparse
import time
from pathlib import Path

from intake_vbo.sample.release import add_arguments
from intake_vbo.sample.s3 import serve_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workdir", type=Path, default=Path(".sample-cache"), help="where the release is cached"
    )
    add_arguments(parser)
    args = parser.parse_args()
    versions = args.versions
    start = time.perf_counter()
    with serve_sample(args.workdir, versions, args.scale, args.seed) as served:
        print(f"release {served.release} published in {time.perf_counter() - start:.1f} s")
        print(f"endpoint URL: {served.endpoint_url}")
        print(f"bucket URL:   {served.bucket_url}")
        print(f"export VBO_BUCKET_URL={served.bucket_url}", flush=True)
        print("serving until Ctrl-C")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping")


if __name__ == "__main__":
    main()

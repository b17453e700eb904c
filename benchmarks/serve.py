"""The full-scale sample release, published on a loopback S3 server in its own process.

The server runs apart from the code being timed, as S3 does: its request handling then
neither shares a GIL with the build nor is counted in it. :func:`served` is the parent's
side; run as a script this file is the child, which prints one JSON line (the endpoint
and bucket URLs) once everything is published and stops when its stdin closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import REPO

SAMPLE_DIR = REPO / ".sample-cache" / "scale-1.0"


@dataclass(frozen=True)
class Endpoint:
    """Where the sample release is served."""

    endpoint_url: str  # http://127.0.0.1:PORT, for boto3
    bucket_url: str  # http://127.0.0.1:PORT/visual-behavior-ophys-data/, for intake-vbo


def sample_release() -> Path:
    """Generate the full-scale sample release (reused when already complete)."""
    from intake_vbo.sample.release import generate_release

    return generate_release(SAMPLE_DIR, scale=1.0)


@contextmanager
def served(release: Path) -> Iterator[Endpoint]:
    """Serve ``release`` from a child process on 127.0.0.1 while the block runs.

    Yields
    ------
    Endpoint
        The server's URLs; the child stops when the block exits.
    """
    child = subprocess.Popen(
        [sys.executable, __file__, str(release)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the loopback S3 server exited before publishing the sample")
        yield Endpoint(**json.loads(line))
    finally:
        child.stdin.close()  # the child's signal to stop
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _serve(release: Path) -> None:
    from intake_vbo.sample.s3 import BUCKET, publish, start_server

    server, endpoint_url = start_server()
    assert endpoint_url.startswith("http://127.0.0.1:"), endpoint_url
    try:
        bucket_url = publish(release, endpoint_url, bucket=BUCKET)
        print(json.dumps({"endpoint_url": endpoint_url, "bucket_url": bucket_url}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        server.stop()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))

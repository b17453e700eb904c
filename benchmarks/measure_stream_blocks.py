"""Measure streamed reads per block size: requests and bytes for a few attributes.

Serves one NWB file from a tiny threaded HTTP server with Range support on loopback,
opens it with ``intake_vbo.transfer.opener.open_url`` (a fresh block store each time) and
reads one attribute, for block sizes 64 KiB .. 4 MiB. Prints requests, bytes received
and a modelled time on a distant link (RTT and bandwidth below): the numbers behind
``intake_vbo.transfer.streamfile.BLOCK``.

    .venv/bin/python benchmarks/measure_stream_blocks.py [FILE.nwb]
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout
HERE = Path(__file__).resolve().parent
DEFAULT = HERE / ".data" / "large_experiment.nwb"
FALLBACK = Path("/work/shared/nwb-fixtures/behavior_ophys_experiment_900000013.nwb")
SIZES = [64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20]
ATTRIBUTES = ["max_projection", "trials", "stimulus_presentations", "dff_traces"]
# Modelled links (seconds per request, bytes per second): same region, distant, far away.
LINKS = [(0.010, 100e6), (0.030, 50e6), (0.080, 20e6)]
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class RangeServer:
    """Serve one file at any path, with single Range requests, an ETag, 206 answers."""

    def __init__(self, path: Path):
        data_path = path
        etag = '"' + hashlib.md5(str(path.stat().st_mtime_ns).encode()).hexdigest() + '"'

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                size = data_path.stat().st_size
                match = _RANGE.fullmatch(self.headers.get("Range", ""))
                if not match:
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                lo = int(match.group(1))
                hi = min(int(match.group(2) or size - 1), size - 1)
                with open(data_path, "rb") as f:
                    f.seek(lo)
                    body = f.read(hi - lo + 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {lo}-{hi}/{size}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}/{path.name}?versionId=measure"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure(url: str, attribute: str, block_size: int) -> tuple[int, int]:
    from intake_vbo.nwb import open_experiment
    from intake_vbo.transfer.opener import open_url

    with tempfile.TemporaryDirectory() as root:
        stream = open_url(url, None, root, block_size=block_size)
        with open_experiment(stream) as exp:
            getattr(exp, attribute)
        return stream.remote.requests, stream.remote.received


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT if DEFAULT.exists() else FALLBACK
    os.environ.setdefault("VBO_STREAM_CACHE_MAX", "")
    server = RangeServer(path)
    links = " ".join(f"{rtt * 1e3:.0f}ms+{bw / 1e6:.0f}MB/s" for rtt, bw in LINKS)
    print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB; modelled seconds on links {links}")
    print(f"{'attribute':24} {'block':>6} {'requests':>9} {'MB':>9}   modelled s")
    try:
        for attribute in ATTRIBUTES:
            for bs in SIZES:
                requests, received = measure(server.url, attribute, bs)
                modelled = " ".join(f"{requests * rtt + received / bw:6.2f}" for rtt, bw in LINKS)
                print(
                    f"{attribute:24} {bs >> 10:5}K {requests:9} {received / 1e6:9.2f}   {modelled}"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()

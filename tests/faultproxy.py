"""A fault-injecting HTTP proxy for tests, on 127.0.0.1 in front of an upstream server.

It passes GETs (with their Range and If-Range headers) to the upstream and, at a
seeded rate, answers instead with a fault: ``500``, ``503`` (with Retry-After), a
connection reset in the middle of the headers or of the body, a truncated body
(full Content-Length declared, half sent, then a clean close), or a slow body.
The fault for the n-th request to a path depends only on the seed, the path and
n, so a test sees the same faults whatever the order of its threads.

It counts body bytes sent to clients, and requests, per path (query left out).
"""

from __future__ import annotations

import io
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

FAULTS = ("500", "503", "reset-headers", "reset-body", "truncate", "slow")
PASSED_HEADERS = (
    "Content-Type",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "x-amz-version-id",
)
SLOW = 4 << 20  # bytes per second of a "slow" fault
# Mis-answers to a Range request, scripted by the streaming tests: a 412 Precondition
# Failed; a 206 with its Content-Range shifted by one byte ("badrange") or left out
# ("nocrange"); a 206 whose ETag is another one ("etag"). (A 200: "norange".)
MISANSWERS = ("412", "badrange", "nocrange", "etag", "version")
BLOCK = 64 << 10


class FaultProxy:
    """A threaded proxy injecting faults; use as a context manager or start()/stop().

    Parameters
    ----------
    upstream : str
        Base URL the request paths are appended to.
    rate : float
        Probability that a request gets a fault (chosen among ``faults``).
    seed : int
        Seeds the choice of faults.
    faults : tuple of str
        The faults to draw from; see :data:`FAULTS`. ``"norange"`` (the upstream is
        asked without the Range header, so it answers 200) may be scripted too.

    Attributes
    ----------
    script : list of str
        Faults forced on the next requests, in order (``"pass"`` forces none).
    throttle : float or None
        Bytes per second for every body (a slow link), when set.
    hold : threading.Event or None
        When set to an event, every request is logged and then waits until the event
        is set before it is answered: a test decides when a transfer may finish.
    sent, requests, injected : Counter
        Body bytes sent and requests per path; faults injected per kind.
    log : list of Request
        Every request: path, Range header, fault, upstream status, body bytes sent.
    """

    def __init__(self, upstream: str, rate: float = 0.0, seed: int = 0, faults=FAULTS):
        self.upstream = upstream.rstrip("/")
        self.rate, self.seed, self.faults = rate, seed, tuple(faults)
        self.retry_after = "1"
        self.throttle: float | None = None
        self.hold: threading.Event | None = None
        self._lock = threading.Lock()
        self.reset()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self.server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget counts and scripted faults.

        Responses still being sent from before (to a client killed meanwhile, say) no
        longer count: their requests are not in the new log.
        """
        with self._lock:
            self.sent, self.requests, self.injected = Counter(), Counter(), Counter()
            self.log: list[Request] = []
            self.script: list[str] = []

    def choose(self, path: str, range_header: str | None) -> Request:
        """Log this request to ``path`` and pick its fault, if any."""
        with self._lock:
            n = self.requests[path]
            self.requests[path] += 1
            if self.script:
                fault = self.script.pop(0)
            else:
                rng = random.Random(f"{self.seed}:{path}:{n}")
                fault = rng.choice(self.faults) if rng.random() < self.rate else None
            fault = None if fault == "pass" else fault
            if fault:
                self.injected[fault] += 1
            self.log.append(Request(path, range_header, fault))
            return self.log[-1]

    def count(self, request: Request, nbytes: int) -> None:
        with self._lock:
            request.sent += nbytes
            if any(r is request for r in self.log):  # a request from before a reset: not
                self.sent[request.path] += nbytes


@dataclass
class Request:
    """One request the proxy saw."""

    path: str
    range: str | None
    fault: str | None
    status: int | None = None
    sent: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients hang up mid-request on purpose (killed, or after a fault)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 does
    proxy: FaultProxy

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        request = self.proxy.choose(urlsplit(self.path).path, self.headers.get("Range"))
        hold = self.proxy.hold
        if hold is not None and not hold.wait(timeout=120):
            raise RuntimeError("FaultProxy.hold was never released")
        fault = request.fault
        try:
            if fault in ("500", "503"):
                request.status = int(fault)
                self._error(int(fault))
            elif fault == "reset-headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Le")
                self._reset()
            elif fault in MISANSWERS:
                self._misanswer(request)
            else:
                self._relay(request)
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            self.close_connection = True

    def _error(self, code: int) -> None:
        body = f"injected {code}".encode()
        self.send_response(code)
        if code == 503:
            self.send_header("Retry-After", self.proxy.retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _relay(self, request: Request) -> None:
        fault = request.fault
        headers = {"Accept-Encoding": "identity"}
        for name in ("Range", "If-Range"):
            if self.headers.get(name) and fault != "norange":
                headers[name] = self.headers[name]
        url = self.proxy.upstream + self.path
        with requests.get(url, headers=headers, stream=True, timeout=30) as upstream:
            length = int(upstream.headers.get("Content-Length", 0))
            request.status = upstream.status_code
            self.send_response(upstream.status_code)
            for name in PASSED_HEADERS:
                if name in upstream.headers:
                    self.send_header(name, upstream.headers[name])
            self.send_header("Content-Length", str(length))
            self.end_headers()
            cut = length // 2 if fault in ("reset-body", "truncate") else length
            rate = self.proxy.throttle or (SLOW if fault == "slow" else None)
            sent = 0
            for chunk in upstream.iter_content(BLOCK):
                chunk = chunk[: cut - sent]
                self.wfile.write(chunk)
                sent += len(chunk)
                self.proxy.count(request, len(chunk))
                if rate:
                    time.sleep(len(chunk) / rate)
                if sent >= cut:
                    break
        if fault == "reset-body":
            self._reset()
        elif fault == "truncate":
            self.close_connection = True  # a clean close, short of the Content-Length

    def _misanswer(self, request: Request) -> None:
        """Answer a Range request wrongly (see :data:`MISANSWERS`), body from upstream."""
        if request.fault == "412":
            request.status = 412
            self._error(412)
            return
        headers = {"Accept-Encoding": "identity"}
        for name in ("Range", "If-Match"):
            if self.headers.get(name):
                headers[name] = self.headers[name]
        upstream = requests.get(self.proxy.upstream + self.path, headers=headers, timeout=30)
        request.status = upstream.status_code
        self.send_response(upstream.status_code)
        for name in PASSED_HEADERS:
            value = upstream.headers.get(name)
            if value is None or (name == "Content-Range" and request.fault == "nocrange"):
                continue
            if name == "Content-Range" and request.fault == "badrange":
                lo, hi, total = (int(v) for v in value.split()[1].replace("/", "-").split("-"))
                value = f"bytes {lo + 1}-{hi + 1}/{total}"
            if name == "ETag" and request.fault == "etag":
                value = '"another-etag"'
            if name == "x-amz-version-id" and request.fault == "version":
                value = "another-version"
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)
        self.proxy.count(request, len(upstream.content))

    def _reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) rather than a clean FIN."""
        self.wfile.flush()
        linger = struct.pack("ii", 1, 0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.close_connection = True
        self.rfile.close()
        self.wfile.close()
        self.connection.close()  # the last reference: the socket really closes, with a reset
        self.wfile = io.BytesIO()  # for the server's final flush

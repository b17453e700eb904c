"""A link-shaping HTTP proxy on 127.0.0.1, for the ``range`` benchmarks.

It forwards each request to one upstream server (keeping one upstream connection per
client connection, as a real client's keep-alive would) and passes the request's
headers (Range, If-Match, ...) and the response's status, headers and body through
unchanged, except ``Host``. Two knobs model a distant server:

- ``rate``: a cap on the bytes per second of each client connection (a token bucket
  per connection, :data:`BUCKET` deep), as the per-connection TCP throughput limit of
  a long path is; ``None`` relays at full speed;
- ``rtt``: a delay before each request is forwarded: one round trip per request.
  TCP and TLS handshakes are not modelled (no connect delay).

It counts requests, client connections and body bytes sent to clients, and the
requests' Range headers, all since the last :meth:`Shaper.reset`. It relays requests
without a body (GET, HEAD) and responses with a ``Content-Length`` or delimited by
the upstream closing (a chunked response closes the client's connection).

Speed: bodies are moved with ``os.splice`` through a pipe (zero copy, no Python per
byte; the thread holds no GIL while the kernel moves them), in slices of up to 4 MiB
unshaped; with a rate, slices of up to 128 KiB, each paced by the bucket.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SLICE = 4 << 20  # bytes moved per splice call, unshaped
SHAPED_SLICE = 128 << 10  # at most this per step when shaped
BUCKET = 128 << 10  # the token bucket's depth: a burst of 5 ms at 25 MB/s
PIPE_SIZE = 1 << 20  # F_SETPIPE_SZ: a large pipe takes a slice in few calls
HEAD_LIMIT = 64 << 10
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; Python 3.10+ names it


@dataclass
class Counts:
    """What the shaper carried since the last reset."""

    requests: int = 0
    connections: int = 0
    sent: int = 0  # body bytes sent to clients
    ranges: list[str] = field(default_factory=list)


class Shaper:
    """The proxy; use as a context manager. ``rate`` and ``rtt`` may change between runs.

    Parameters
    ----------
    upstream : str
        ``http://127.0.0.1:PORT`` of the server.
    rate : float, optional
        Bytes per second per client connection (None: unshaped).
    rtt : float
        Seconds added before each request is forwarded.
    """

    def __init__(self, upstream: str, rate: float | None = None, rtt: float = 0.0):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 80)
        self.host_header = parts.netloc.encode()
        self.rate, self.rtt = rate, rtt
        self.counts = Counts()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def shape(self, rate: float | None, rtt: float) -> None:
        """Set the knobs for connections and requests from now on."""
        self.rate, self.rtt = rate, rtt

    def reset(self) -> Counts:
        """Start counting afresh; return the counts until now."""
        with self._lock:
            counts, self.counts = self.counts, Counts()
        return counts

    def __enter__(self) -> Shaper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._thread.join()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.counts.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        """One client connection: its requests in turn, until either side closes."""
        link = _Link(self, client)
        try:
            while link.one():
                pass
        except OSError:  # a client that hung up mid-body (an aborted GET), a reset
            pass
        finally:
            link.close()


class _Link:
    """A client connection, its upstream connection, a pipe and a token bucket."""

    def __init__(self, shaper: Shaper, client: socket.socket):
        self.shaper, self.client = shaper, client
        self.rate = shaper.rate  # fixed per connection
        self.upstream: socket.socket | None = None
        self.pending = b""  # client bytes read past the last request head
        self.read_fd, self.write_fd = os.pipe()
        with contextlib.suppress(OSError):  # else the default 64 KiB pipe, in more calls
            fcntl.fcntl(self.write_fd, _F_SETPIPE_SZ, PIPE_SIZE)
        self.tokens, self.last = 0.0, time.monotonic()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is not None:
                sock.close()
        os.close(self.read_fd)
        os.close(self.write_fd)

    def one(self) -> bool:
        """Relay one request and its response; False when the client closed."""
        head, self.pending = _read_head(self.client, self.pending)
        if head is None:
            return False
        request_line, headers = _parse(head)
        method = request_line.split(b" ", 1)[0].upper()
        shaper = self.shaper
        with shaper._lock:
            shaper.counts.requests += 1
            shaper.counts.ranges.append(headers.get(b"range", b"").decode())
        if shaper.rtt:
            time.sleep(shaper.rtt)
        out = [request_line]
        out += [line for line in head.split(b"\r\n")[1:] if line and not _is(line, b"host")]
        out.insert(1, b"Host: " + shaper.host_header)
        response_head, rest = self._exchange(b"\r\n".join(out) + b"\r\n\r\n")
        status_line, response_headers = _parse(response_head)
        status = int(status_line.split()[1])
        self.client.sendall(response_head)
        if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
            length = 0
        elif b"content-length" in response_headers:
            length = int(response_headers[b"content-length"])
        elif b"chunked" in response_headers.get(b"transfer-encoding", b"").lower():
            raise ConnectionError("chunked responses are not relayed")  # S3 objects never are
        else:  # delimited by the upstream closing
            self._send_body(rest, None)
            return False
        self._send_body(rest, length)
        keep = response_headers.get(b"connection", b"").lower() != b"close"
        if not keep:
            self.upstream.close()
            self.upstream = None
        return True

    def _exchange(self, request: bytes) -> tuple[bytes, bytes]:
        """Send the request upstream (reconnecting once if the kept connection died)."""
        for attempt in (0, 1):
            if self.upstream is None:
                self.upstream = socket.create_connection(self.shaper.upstream)
                self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.upstream.sendall(request)
                head, rest = _read_head(self.upstream, b"")
                if head is not None:
                    return head, rest
            except OSError:
                if attempt:
                    raise
            self.upstream.close()
            self.upstream = None
        raise ConnectionError("upstream closed the connection")

    def _send_body(self, first: bytes, length: int | None) -> None:
        """Relay ``length`` body bytes (None: until upstream closes), shaped."""
        if first:
            first = first if length is None else first[:length]
            self._pace(len(first))
            self.client.sendall(first)
            self._count(len(first))
        left = None if length is None else length - len(first)
        src, dst = self.upstream.fileno(), self.client.fileno()
        while left is None or left > 0:
            want = SLICE if self.rate is None else SHAPED_SLICE
            want = want if left is None else min(want, left)
            got = os.splice(src, self.write_fd, want)
            if got == 0:
                if left is None:
                    return
                raise ConnectionError("upstream ended the body early")
            self._pace(got)
            moved = 0
            while moved < got:
                moved += os.splice(self.read_fd, dst, got - moved)
            self._count(got)
            if left is not None:
                left -= got

    def _pace(self, nbytes: int) -> None:
        """Take ``nbytes`` from the bucket, sleeping until they are there."""
        if self.rate is None:
            return
        now = time.monotonic()
        self.tokens = min(BUCKET, self.tokens + (now - self.last) * self.rate) - nbytes
        self.last = now
        if self.tokens < 0:
            time.sleep(-self.tokens / self.rate)

    def _count(self, nbytes: int) -> None:
        with self.shaper._lock:
            self.shaper.counts.sent += nbytes


def _read_head(sock: socket.socket, pending: bytes) -> tuple[bytes | None, bytes]:
    """A message head (up to the blank line) and the bytes read past it; None on EOF."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(HEAD_LIMIT)
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > HEAD_LIMIT:
            raise ConnectionError("message head too long")
    end = data.index(b"\r\n\r\n") + 4
    return data[:end], data[end:]


def _parse(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """The first line and the headers (lower-case names) of a message head."""
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _is(line: bytes, name: bytes) -> bool:
    return line.split(b":", 1)[0].strip().lower() == name

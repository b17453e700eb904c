"""Pinned HTTP Range reads of one object version.

:class:`Remote` reads byte ranges of one object version: the URL carries the
manifest's ``versionId``; after the first response every request carries
``If-Match: <ETag>`` and must report the same total size. A server that answers a
Range request with 200, with a missing or wrong ``Content-Range``, with another
ETag or with 412 is a one-line :class:`Misanswer` (a :class:`VboError`) naming the URL
and what was wrong: never silently wrong data. Retries, backoff and timeouts are
:mod:`intake_vbo.transfer.http`'s; a retried transfer resumes after the bytes already
delivered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from ..base.errors import VboError
from .http import DEFAULT_BACKOFF, TIMEOUT, Backoff, Retry, call, check, session

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
CHUNK = 1 << 16  # bytes handed to the sink at a time


class Misanswer(VboError):
    """A server's wrong answer to a Range request (200, another range, size or ETag, 412).

    Told apart from exhausted retries: a parallel download that meets one falls back
    to one connection, where the file's digest decides.
    """


class Remote:
    """Byte ranges of one object version over HTTP(S), pinned to its ETag and size.

    Parameters
    ----------
    url : str
        ``http(s)://.../key?versionId=...`` (path or virtual-host style).
    etag, size : optional
        The pin, when known from an earlier response (another process's, say).
    backoff : Backoff
        Retry policy.

    Attributes
    ----------
    requests, received : int
        HTTP requests made and body bytes received, for measurements.
    """

    def __init__(self, url: str, etag: str | None = None, size: int | None = None,
                 backoff: Backoff = DEFAULT_BACKOFF):  # fmt: skip
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise VboError(f"{url[:200]}: not an http(s) URL")
        self.url, self.etag, self.size, self.backoff = url, etag, size, backoff
        self.name = url.split("?", 1)[0]
        self.path = parts.path
        self.version_id = (parse_qs(parts.query).get("versionId") or [None])[0]
        self.requests = self.received = 0

    def get(self, start: int, stop: int, sink: Callable[[bytes], object]) -> int:
        """Deliver bytes ``[start, stop)`` to ``sink`` in order; return how many.

        ``stop`` is clamped at the object's size (learnt from the first response
        if unknown). A transient failure retries the rest, after what was delivered.
        """
        done = start

        def once() -> None:
            nonlocal done
            end = stop if self.size is None else min(stop, self.size)
            if done >= end:
                return
            headers = {"Range": f"bytes={done}-{end - 1}", "Accept-Encoding": "identity"}
            if self.etag:
                headers["If-Match"] = self.etag
            self.requests += 1
            with session().get(self.url, headers=headers, stream=True, timeout=TIMEOUT) as r:
                last = self._validate(r, done, end)
                for chunk in r.iter_content(CHUNK):
                    chunk = chunk[: last + 1 - done]
                    self.received += len(chunk)
                    sink(chunk)
                    done += len(chunk)
                if done <= last:
                    raise Retry(f"truncated body from {self.name}: ended at {done} of {last + 1}")

        call(once, self.name, self.backoff)
        return done - start

    def pin(self, response, end: int) -> None:
        """Check a first response to ``bytes=0-(end-1)`` made elsewhere; pin its ETag and size."""
        self._validate(response, 0, end)

    def _validate(self, r, first: int, end: int) -> int:
        """Check a response to ``bytes=first-(end-1)``; pin ETag and size; return its last byte."""
        asked = f"bytes={first}-{end - 1}"
        if r.status_code == 412:
            r.close()
            raise Misanswer(
                f"{self.name}: the object changed (HTTP 412 Precondition Failed for "
                f"If-Match {self.etag}); cannot stream it"
            )
        try:
            check(r, self.name)  # Retry for a transient status
        except Misanswer:
            raise
        except VboError as exc:  # a final 4xx to a pinned range
            raise Misanswer(str(exc)) from None
        if r.status_code != 206:
            raise Misanswer(
                f"{self.name}: answered a Range request ({asked}) with HTTP {r.status_code}, "
                "not 206 Partial Content"
            )
        content_range = r.headers.get("Content-Range")
        match = _CONTENT_RANGE.fullmatch((content_range or "").strip())
        if not match:
            raise Misanswer(f"{self.name}: missing or malformed Content-Range {content_range!r} "
                           f"for {asked}")  # fmt: skip
        lo, hi, total = (int(g) for g in match.groups())
        if self.size is not None and total != self.size:
            raise Misanswer(f"{self.name}: the object's size changed from {self.size} to {total} "
                           f"(Content-Range {content_range!r})")  # fmt: skip
        if lo != first or hi != min(end, total) - 1:
            raise Misanswer(f"{self.name}: wrong Content-Range {content_range!r} for {asked}")
        served = r.headers.get("x-amz-version-id")
        if self.version_id and served and served != self.version_id:
            raise Misanswer(f"{self.name}: answered for version {served}, not {self.version_id}")
        etag = r.headers.get("ETag")
        if not etag:
            raise Misanswer(
                f"{self.name}: no ETag in the response; cannot pin the reads to one version"
            )
        if self.etag is not None and etag != self.etag:
            raise Misanswer(f"{self.name}: the object's ETag changed from {self.etag} to {etag}")
        self.etag, self.size = etag, total
        return hi

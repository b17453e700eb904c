"""Anonymous HTTP GETs with retries: timeouts, backoff with jitter, Retry-After.

Every request the package makes goes through here, so the retry policy is written
once. 5xx, 429, connection errors, resets and truncated bodies are retried; any
other 4xx is final and becomes a one-line :class:`VboError`.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from ..base.errors import VboError
from ..base.settings import backoff_base

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
TIMEOUT = (10.0, 60.0)  # connect, read (between bytes)
_local = threading.local()


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait between attempts.

    The wait before retry ``n`` is drawn uniformly from ``[0, min(cap, base * 2**n)]``
    ("full jitter"), so many clients hitting one failing server spread out.
    ``VBO_BACKOFF_BASE`` scales ``base`` for impatient tests. ``sleep`` does the
    waiting (``time.sleep``); a test may pass its own to see the waits chosen.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], object] = field(default=time.sleep, repr=False, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before the attempt after ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(retry_after, self.cap)
        base = backoff_base()
        base = self.base if base is None else base
        return random.uniform(0, min(self.cap, base * 2**attempt))


DEFAULT_BACKOFF = Backoff()


def session() -> requests.Session:
    """One pooled session per thread (a Session is not safe to share across threads)."""
    if not hasattr(_local, "session"):
        s = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        _local.session = s
    return _local.session


def retry_after(response: requests.Response) -> float | None:
    """The server's Retry-After in seconds (delta-seconds or HTTP-date), if it sent one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


class Retry(Exception):
    """Raised by one attempt inside :func:`call` for a failure worth another try."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


def call(fn, what: str, backoff: Backoff = DEFAULT_BACKOFF):
    """Run ``fn()`` until it returns, retrying on :class:`Retry` and network errors.

    Parameters
    ----------
    fn : callable
        Does one attempt; raises :class:`Retry` (or a requests connection error)
        for a transient failure, :class:`VboError` for a final one.
    what : str
        Names the thing being fetched, for the error message.
    backoff : Backoff
        The retry policy.
    """
    last = "no attempt made"
    for attempt in range(backoff.attempts):
        try:
            return fn()
        except Retry as exc:
            last, wait = str(exc), exc.wait
        except (requests.ConnectionError, requests.Timeout) as exc:
            last, wait = _describe(exc), None
        except requests.exceptions.ChunkedEncodingError as exc:
            last, wait = f"truncated body ({_describe(exc)})", None
        if attempt + 1 < backoff.attempts:
            backoff.sleep(backoff.delay(attempt, wait))
    raise VboError(f"{what}: failed after {backoff.attempts} attempts: {last}")


def check(response: requests.Response, what: str) -> None:
    """Raise :class:`Retry` for a transient status, :class:`VboError` for a final one."""
    code = response.status_code
    if code in RETRY_STATUS:
        response.close()
        raise Retry(f"HTTP {code} from {_strip(response.url)}", retry_after(response))
    if code >= 400:
        response.close()
        raise VboError(f"{what}: HTTP {code} {response.reason} from {_strip(response.url)}")


def get_bytes(url: str, what: str, backoff: Backoff = DEFAULT_BACKOFF) -> bytes:
    """GET ``url`` whole, with retries.

    A body shorter than its Content-Length counts as a transient failure.
    """

    def once() -> bytes:
        response = session().get(url, timeout=TIMEOUT)
        check(response, what)
        body = response.content
        expected = response.headers.get("Content-Length")
        plain = "Content-Encoding" not in response.headers
        if expected is not None and plain and len(body) != int(expected):
            raise Retry(f"truncated body from {_strip(url)}: {len(body)} of {expected} bytes")
        return body

    return call(once, what, backoff)


def _strip(url: str) -> str:
    """The URL without its query string, for messages."""
    return url.split("?", 1)[0]


def _describe(exc: Exception) -> str:
    """A short one-line reason for a requests exception."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"

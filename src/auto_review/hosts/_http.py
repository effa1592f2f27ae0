"""HTTP plumbing of the forge adapters, and the one place where httpx errors become ``HostError``.

- Every request carries an explicit timeout and never follows redirects; one attempt, however
  slowly the answer drips, ends after ``_ANSWER_READS`` (5) read timeouts.
- Transient failures (429, 5xx, timeouts, refused connections) are retried with capped
  exponential backoff and jitter. A ``Retry-After`` from the forge (on 429 or 5xx) replaces
  the backoff, up to ``RetryPolicy.max_retry_after_s``; a longer wait is handed to the caller
  as the error's ``retry_after`` instead of sleeping.
- Non-idempotent requests (POST) are retried only when the forge cannot have acted on them:
  429, 503, or a connection that was never established. A 500 or a read timeout after a POST
  may hide a created review or comment, and posting it twice is worse than failing once.
- Answer bodies are read up to a byte cap; error bodies are truncated and scrubbed of the
  credentials this client holds before they reach an exception message.
- The forge (or a proxy in front of it) is not trusted to answer sanely: JSON with more than
  ``MAX_JSON_CONTAINERS`` arrays and objects, or nested deeper than the parser goes, is refused
  before it costs memory or crashes the caller, and a paged listing keeps at most
  ``MAX_LISTING_BYTES`` of answers however many pages the forge offers.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from auto_review import __version__
from auto_review.errors import (
    HostAuthError,
    HostError,
    HostNotFound,
    HostRateLimited,
    HostUnavailable,
)
from auto_review.logs import get_logger

__all__ = [
    "DEFAULT_TIMEOUT",
    "ERROR_SNIPPET_CHARS",
    "MAX_BODY_BYTES",
    "MAX_JSON_CONTAINERS",
    "MAX_LISTING_BYTES",
    "MAX_PAGES",
    "PAGE_LIMIT",
    "ForgeHttp",
    "HttpResult",
    "RetryPolicy",
    "Sleep",
    "redact",
]

# Gitea's MAX_RESPONSE_ITEMS default; a server configured lower answers shorter pages, which is
# why paging follows the Link header rather than stopping on the first short page.
PAGE_LIMIT = 50
# At most this many pages per listing (5,000 rows at 50 per page); more is logged and dropped.
MAX_PAGES = 100
# Largest answer read into memory (a whole-PR diff is the biggest thing we fetch).
MAX_BODY_BYTES = 32 * 1024 * 1024
# Most '[' and '{' (counted in the raw bytes, strings included) a JSON answer may hold. An honest
# page of 50 rows has a few hundred; empty arrays and objects cost the parser ~25 times their
# size (32 MiB of "{}," would peak near 800 MiB).
MAX_JSON_CONTAINERS = 100_000
# Most answer bytes one paged listing keeps: every page may be MAX_BODY_BYTES, and MAX_PAGES of
# them held at once would be gigabytes. 5,000 honest rows are a few MiB.
MAX_LISTING_BYTES = 64 * 1024 * 1024
# How much of an error body an exception message may quote.
ERROR_SNIPPET_CHARS = 300
# Connect fast, allow slow diffs: a big PR's .diff can take the forge tens of seconds.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=10.0)
# One attempt (connect, send, every read) ends after this many read timeouts (300 s by default):
# each read alone cannot catch a forge or proxy that drips its answer a byte at a time. A whole
# 32 MiB answer still fits at about 110 KB/s.
_ANSWER_READS = 5

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})
_AUTH_WORDS = re.compile(r"(?i)\b(token|bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_log = get_logger("auto_review.hosts")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient forge failure."""

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int, jitter: float) -> float:
        """Delay before retry number ``attempt`` (1-based): capped exponential, equal jitter."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + ceiling / 2 * jitter


@dataclass(frozen=True)
class HttpResult:
    """A successful (2xx) answer, fully read."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ``HostError`` when it is not, or could not be parsed safely."""
        if self.body.count(b"[") + self.body.count(b"{") > MAX_JSON_CONTAINERS:
            raise HostError(
                f"the forge sent JSON with more than {MAX_JSON_CONTAINERS} arrays and objects",
                status=self.status,
            )
        try:
            return json.loads(self.body)
        except RecursionError as exc:
            raise HostError("the forge sent JSON nested too deep", status=self.status) from exc
        except ValueError as exc:
            raise HostError("the forge sent invalid JSON", status=self.status) from exc

    def text(self) -> str:
        """The body as UTF-8 text (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")


class _NotSent(HostUnavailable):
    """The connection failed before the request could reach the forge (safe to resend)."""


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` without the given secrets or anything shaped like an auth header, truncated."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    text = _AUTH_WORDS.sub(lambda m: f"{m.group(1)} [REDACTED]", text)
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > ERROR_SNIPPET_CHARS:
        text = text[:ERROR_SNIPPET_CHARS] + "..."
    return text


class ForgeHttp:
    """Sends requests to one forge with one credential; raises only ``HostError`` subclasses."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        authorization: str | None,
        secrets: Sequence[str],
        retry: RetryPolicy,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._authorization = authorization
        self._secrets = tuple(secrets)
        self._retry = retry
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._timeout = timeout

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        accept: str = "application/json",
        max_bytes: int = MAX_BODY_BYTES,
        idempotent: bool | None = None,
    ) -> HttpResult:
        """One logical request with retries; the 2xx answer or a ``HostError``.

        ``idempotent`` overrides the method's default (POSTs that may safely repeat).
        """
        safe = method in _IDEMPOTENT if idempotent is None else idempotent
        attempt = 1
        while True:
            try:
                return await self._once(
                    method, url, params=params, body=body, accept=accept, max_bytes=max_bytes
                )
            except HostError as exc:
                delay = self._retry_delay(exc, attempt, safe=safe)
                if delay is None:
                    raise
                _log.warning(
                    "forge_retry",
                    method=method,
                    path=_path(url),
                    attempt=attempt,
                    status=exc.status,
                    delay_s=round(delay, 3),
                )
                await self._sleep(delay)
                attempt += 1

    def _retry_delay(self, exc: HostError, attempt: int, *, safe: bool) -> float | None:
        if not exc.transient:
            return None
        if not safe and not (isinstance(exc, HostRateLimited | _NotSent) or exc.status == 503):
            return None
        retry_after = (
            exc.retry_after if isinstance(exc, HostRateLimited | HostUnavailable) else None
        )
        if retry_after is not None and retry_after > self._retry.max_retry_after_s:
            return None  # the caller reschedules; a worker must not sleep for minutes
        if attempt >= self._retry.max_attempts:
            exc.message = f"{exc.message} (gave up after {attempt} attempts)"
            exc.args = (exc.message,)
            return None
        if retry_after is not None:
            return retry_after
        return self._retry.backoff(attempt, self._jitter())

    async def _once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None,
        body: Any,
        accept: str,
        max_bytes: int,
    ) -> HttpResult:
        headers = {"Accept": accept, "User-Agent": f"auto-review/{__version__}"}
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        where = f"{method} {_path(url)}"
        deadline = (self._timeout.read or DEFAULT_TIMEOUT.read or 60.0) * _ANSWER_READS
        try:
            async with asyncio.timeout(deadline):
                request = self._client.build_request(
                    method, url, params=params, json=body, headers=headers, timeout=self._timeout
                )
                response = await self._client.send(request, stream=True, follow_redirects=False)
                try:
                    data = await _read_capped(response, max_bytes, where)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise HostUnavailable(f"{where}: no whole answer within {deadline:g}s") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _NotSent(f"{where}: cannot connect to the forge ({type(exc).__name__})") from exc
        except httpx.TimeoutException as exc:
            raise HostUnavailable(f"{where}: the forge timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise HostUnavailable(f"{where}: transport failure ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise HostError(f"{where}: request failed ({type(exc).__name__})") from exc
        if 200 <= response.status_code < 300:
            return HttpResult(response.status_code, response.headers, data)
        raise self._status_error(where, response.status_code, response.headers, data)

    def _status_error(
        self, where: str, status: int, headers: Mapping[str, str], data: bytes
    ) -> HostError:
        snippet = redact(_error_text(data), self._secrets)
        message = f"{where}: HTTP {status}" + (f": {snippet}" if snippet else "")
        if status in (401, 403):
            return HostAuthError(message, status=status)
        if status == 404:
            return HostNotFound(message, status=status)
        if status == 429:
            return HostRateLimited(message, retry_after=self._retry_after(headers))
        if status >= 500 or status == 408:
            return HostUnavailable(message, status=status, retry_after=self._retry_after(headers))
        if 300 <= status < 400:
            return HostError(f"{where}: unexpected redirect (HTTP {status})", status=status)
        return HostError(message, status=status)

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        raw = headers.get("retry-after", "").strip()
        if not raw:
            return None
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - self._clock())

    async def paginate(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        limit: int = PAGE_LIMIT,
        max_pages: int = MAX_PAGES,
        max_bytes: int = MAX_LISTING_BYTES,
    ) -> list[Any]:
        """Every item of a Gitea-paged JSON list, up to ``max_pages`` pages and ``max_bytes``.

        A page that would take the listing past ``max_bytes`` is dropped and the listing ends
        there, logged like the page cap.

        A server that ignores ``page`` (older Gitea on some routes) answers the same items
        again; a page that brings no new ``id`` ends the listing instead of looping to the cap.
        """
        items: list[Any] = []
        seen_ids: set[int] = set()
        kept_bytes = 0
        for page in range(1, max_pages + 1):
            result = await self.request(
                "GET", url, params={**(params or {}), "page": page, "limit": limit}
            )
            kept_bytes += len(result.body)
            if kept_bytes > max_bytes:
                _log.warning(
                    "forge_listing_capped", path=_path(url), max_bytes=max_bytes, items=len(items)
                )
                return items
            chunk = result.json()
            if not isinstance(chunk, list):
                raise HostError(f"GET {_path(url)}: expected a JSON list")
            ids = [i.get("id") for i in chunk if isinstance(i, dict)]
            if chunk and len(ids) == len(chunk) and all(isinstance(i, int) for i in ids):
                fresh = [i for i in chunk if i["id"] not in seen_ids]
                if not fresh:
                    return items
                seen_ids.update(i["id"] for i in fresh)
                chunk = fresh
            items.extend(chunk)
            if not chunk or not _has_next(result.headers, len(items), len(chunk), limit):
                return items
        _log.warning("forge_pagination_capped", path=_path(url), pages=max_pages, items=len(items))
        return items


def _path(url: str) -> str:
    # For messages and logs: the path only, never the query string or the host's userinfo.
    return urlsplit(url).path


def _has_next(headers: Mapping[str, str], seen: int, got: int, limit: int) -> bool:
    # Gitea sends Link with rel="next" while more pages exist; some routes send only the count.
    link = headers.get("link")
    if link is not None:
        return 'rel="next"' in link
    total = headers.get("x-total-count")
    if total is not None and total.isdigit():
        return seen < int(total)
    return got >= limit


async def _read_capped(response: httpx.Response, max_bytes: int, where: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise HostError(f"{where}: answer larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_text(data: bytes) -> str:
    # Gitea errors are {"message": ..., "url": ...}; prefer the message over raw bytes. The whole
    # text is returned: cutting before ``redact`` could leave a token's prefix behind.
    text = data.decode("utf-8", "replace")
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return text

"""Reading a request body with a size cap enforced while streaming, and a total deadline.

The cap is checked against ``Content-Length`` before reading and again chunk by chunk, so a
client that lies about (or omits) the length is cut off as soon as it crosses the cap, never
after the whole body sits in memory. The deadline bounds the whole read, so a client that
trickles bytes cannot hold a connection slot forever.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request

__all__ = ["BodyError", "read_body"]


class BodyError(Exception):
    """The body cannot be read: ``status`` is the HTTP answer (408, 413 or 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: Request, *, max_bytes: int, deadline_secs: float) -> bytes:
    """The raw body, or ``BodyError`` (413 too large, 408 too slow, 400 malformed length)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BodyError(400, "invalid content-length")
        if int(declared) > max_bytes:
            raise BodyError(413, "request body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline_secs):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyError(413, "request body too large")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise BodyError(408, "request body not received in time") from exc
    except ClientDisconnect as exc:
        raise BodyError(400, "client disconnected") from exc
    return b"".join(chunks)

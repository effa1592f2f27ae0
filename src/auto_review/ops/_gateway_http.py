"""The one place ``ops`` talks HTTP to a running gateway and sees ``httpx`` errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from auto_review.errors import AutoReviewError

__all__ = ["GatewayAnswer", "GatewayUnreachable", "gateway_client", "gateway_request"]

# An answer body is read only this far: status pages are small, a huge one is not ours.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class GatewayUnreachable(AutoReviewError):
    """No HTTP answer came from the gateway (refused, timed out, not HTTP)."""


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    body: bytes
    content_type: str

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def gateway_client(timeout_secs: float) -> httpx.AsyncClient:
    """A client with a hard timeout; no proxies or redirects taken from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_secs), follow_redirects=False, trust_env=False
    )


async def gateway_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    content: bytes | None = None,
    headers: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
) -> GatewayAnswer:
    """One request; any HTTP status is an answer, a transport failure ``GatewayUnreachable``."""
    try:
        async with client.stream(method, url, content=content, headers=headers) as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    break
            return GatewayAnswer(
                response.status_code,
                body[:MAX_ANSWER_BYTES],
                response.headers.get("content-type", ""),
            )
    except httpx.HTTPError as exc:
        raise GatewayUnreachable(
            f"no answer from {url}: {type(exc).__name__}; is `auto-review gateway` running "
            "there, and is the URL the one it listens on (AR_GATEWAY_BIND)?"
        ) from exc

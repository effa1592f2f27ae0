"""Bearer tokens: the check ``/reviews/ci`` and the operator endpoints share.

``bearer_matches`` compares in constant time. ``OperatorGuard`` puts ``/info`` and ``/metrics``
behind ``AR_OPERATOR_TOKEN`` when it is set: rate limit first (429, so guessing is throttled
like every other authenticated route), then the token (401 with ``WWW-Authenticate: Bearer``
and a fixed body). Unset, it lets everything through, as before the token existed.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from auto_review.gateway._ratelimit import WebhookRateLimiter
from auto_review.logs import get_logger

__all__ = ["OperatorGuard", "bearer_matches"]

_log = get_logger("gateway.operator")


def bearer_matches(header: str, token: bytes) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>``, in constant time."""
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":  # auth schemes are case-insensitive (RFC 9110, 11.1)
        # Still compare, so a missing or odd header costs the same as a wrong token.
        hmac.compare_digest(token, token)
        return False
    # closes: a token that is not ASCII never matching (F64): Starlette reads header bytes as
    # Latin-1, so encoding back that way gives the bytes the client sent, as settings count them.
    return hmac.compare_digest(presented.strip().encode("latin-1"), token)


class OperatorGuard:
    """Decides whether an operator request may be answered; ``refusal`` is None if so."""

    def __init__(self, *, token: bytes | None, limiter: WebhookRateLimiter) -> None:
        self._token = token
        self._limiter = limiter

    def refusal(self, request: Request) -> Response | None:
        if self._token is None:
            return None
        client = request.client.host if request.client else "unknown"
        decision = self._limiter.check(client)
        if not decision.allowed:
            return PlainTextResponse(
                "rate limit", status_code=429, headers={"Retry-After": str(decision.retry_after)}
            )
        if bearer_matches(request.headers.get("authorization", ""), self._token):
            return None
        # closes: /info (store path, model, isolation controls that are off) and /metrics
        # (activity) read by anyone who reaches the port the forge's webhooks need.
        _log.warning("operator_unauthorized", client=client, path=request.url.path)
        return PlainTextResponse(
            "unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

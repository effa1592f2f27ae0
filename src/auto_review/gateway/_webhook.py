"""``POST /webhooks/forgejo`` (and ``/webhooks/gitea``): the authenticated intake of forge events.

Order is a security property, each step cheaper than the next and none trusting the body early:

1. rate limit (global and per client address) -> 429 with Retry-After; no body read, no crypto;
2. body read with a size cap and a deadline -> 413 / 408;
3. HMAC-SHA256 over the raw bytes -> 401 missing or mismatch, 400 malformed;
4. event classification into a bounded label;
5. dedup: a replay of an accepted delivery id, or of an accepted ``pull_request`` body under
   any id -> 200 "duplicate";
6. JSON decoding (only now) and handling -> 202, 200 pong, or 400 (counted by class).

The delivery id (and body key) is recorded only when the answer is 2xx, so a failed delivery can
be retried.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from auto_review.errors import AutoReviewError, HostError
from auto_review.gateway._body import BodyError, read_body
from auto_review.gateway._dedup import MAX_DELIVERY_ID_LEN, DeliveryDedup, body_key
from auto_review.gateway._events import (
    CommentEvent,
    PayloadError,
    PullRequestEvent,
    decode_comment,
    decode_pull_request,
    mentions,
)
from auto_review.gateway._intake import Intake
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.gateway._ratelimit import WebhookRateLimiter
from auto_review.gateway._signature import SignatureFailure, verify_signature
from auto_review.logs import get_logger

__all__ = ["WebhookEndpoint"]

_COMMENT_EVENTS = frozenset(
    {"issue_comment", "pull_request_comment", "pull_request_review_comment"}
)
# Events whose replayed body costs something: a ``review_requested`` forces a review each time.
# Two legitimate ``pull_request`` bodies are byte-identical only when the same action is repeated
# within the second of ``pull_request.updated_at``, on the same head: the first one queued that
# work already. Comment events are left to the chat job's uniqueness per comment id.
_BODY_DEDUP_EVENTS = frozenset({"pull_request"})
_log = get_logger("gateway.webhook")


def _text(status: int, body: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(body, status_code=status, headers=headers)


class WebhookEndpoint:
    """The webhook route; ``handle`` is the Starlette endpoint."""

    def __init__(
        self,
        *,
        secret: bytes,
        limiter: WebhookRateLimiter,
        dedup: DeliveryDedup,
        intake: Intake,
        metrics: GatewayMetrics,
        max_body_bytes: int,
        body_deadline_secs: float,
        bot_login: str,
        mention_name: str,
    ) -> None:
        self._secret = secret
        self._limiter = limiter
        self._dedup = dedup
        self._intake = intake
        self._metrics = metrics
        self._max_body = max_body_bytes
        self._deadline = body_deadline_secs
        self._bot = bot_login.lower()
        self._mention = mention_name

    async def handle(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        decision = self._limiter.check(client)
        if not decision.allowed:
            self._metrics.rate_limited.labels(scope=decision.scope).inc()
            return self._count(
                "none",
                "rate_limited",
                _text(429, "rate limit", {"Retry-After": str(decision.retry_after)}),
            )
        try:
            body = await read_body(request, max_bytes=self._max_body, deadline_secs=self._deadline)
        except BodyError as exc:
            outcome = {413: "too_large", 408: "timeout"}.get(exc.status, "bad_request")
            return self._count("none", outcome, _text(exc.status, exc.message))
        failure = verify_signature(self._secret, body, request.headers)
        if failure is not None:
            self._metrics.signature_failures.labels(reason=failure.value).inc()
            _log.warning("webhook_signature_rejected", reason=failure.value, client=client)
            status = 400 if failure is SignatureFailure.MALFORMED else 401
            message = {
                SignatureFailure.MISSING: "missing signature",
                SignatureFailure.MALFORMED: "malformed signature",
                SignatureFailure.MISMATCH: "signature does not match",
            }[failure]
            return self._count("none", "rejected_signature", _text(status, message))
        raw_event = _header(request, "x-forgejo-event", "x-gitea-event", "x-github-event")
        event = self._metrics.event_label(raw_event)
        delivery = _header(request, "x-forgejo-delivery", "x-gitea-delivery", "x-github-delivery")
        if len(delivery) > MAX_DELIVERY_ID_LEN or not delivery.isprintable():
            return self._count(event, "bad_request", _text(400, "invalid delivery id"))
        keys = [delivery] if delivery else []
        if raw_event in _BODY_DEDUP_EVENTS:
            # The signature covers the body only: a captured body re-sent under fresh delivery
            # ids would force a review each time (closes: REDTEAM F66).
            keys.append(body_key(body))
        if any(self._dedup.seen(key) for key in keys):
            self._metrics.duplicates.inc()
            return self._count(event, "duplicate", _text(200, "duplicate"))
        begun: list[str] = []
        for key in keys:
            if not self._dedup.begin(key):
                for other in begun:
                    self._dedup.end(other, accepted=False, event=event)
                return self._count(event, "in_progress", _text(409, "delivery in progress"))
            begun.append(key)
        response: Response | None = None
        try:
            response = await self._dispatch(raw_event, event, body)
        finally:
            accepted = response is not None and response.status_code < 300
            for key in keys:
                self._dedup.end(key, accepted=accepted, event=event)
        return response

    async def _dispatch(self, raw_event: str, event: str, body: bytes) -> Response:
        try:
            if raw_event == "ping":
                return self._count(event, "pong", _text(200, "pong"))
            if raw_event == "pull_request":
                return await self._pull_request(event, decode_pull_request(body))
            if raw_event in _COMMENT_EVENTS:
                return await self._comment(event, decode_comment(body, raw_event))
        except PayloadError as exc:
            self._metrics.payload_failures.labels(event=event, **{"class": exc.kind}).inc()
            _log.warning("webhook_payload_rejected", webhook_event=event, failure_class=exc.kind)
            return self._count(event, "rejected_payload", _text(400, "payload decode failed"))
        except HostError:
            _log.warning("webhook_forge_call_failed", webhook_event=event)
            return self._count(event, "error", _text(502, "forge unavailable; retry later"))
        except AutoReviewError:
            _log.exception("webhook_handling_failed", webhook_event=event)
            return self._count(event, "error", _text(503, "cannot accept now; retry later"))
        return self._count(event, "ignored", _text(202, "ignored"))

    async def _pull_request(self, event: str, ev: PullRequestEvent) -> Response:
        handled = await self._intake.pull_request(ev)
        return self._count(event, "accepted" if handled else "ignored", _text(202, "accepted"))

    async def _comment(self, event: str, ev: CommentEvent) -> Response:
        if ev.action not in ("created", "reviewed", "submitted") or not ev.on_pull_request:
            return self._count(event, "ignored", _text(202, "ignored"))
        if ev.author.lower() == self._bot:
            return self._count(event, "ignored", _text(202, "own comment ignored"))
        if not mentions(ev.body, self._mention):
            return self._count(event, "ignored", _text(202, "no mention"))
        queued = await self._intake.mention(ev)
        return self._count(event, "accepted" if queued else "ignored", _text(202, "accepted"))

    def _count(self, event: str, outcome: str, response: Response) -> Response:
        self._metrics.count_request(event, outcome)
        return response


def _header(request: Request, *names: str) -> str:
    for name in names:
        value = request.headers.get(name)
        if value:
            return value.strip()
    return ""

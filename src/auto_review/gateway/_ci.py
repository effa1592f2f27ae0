"""``POST /reviews/ci``: a CI job asks for a review of a PR head after its own checks passed.

Checks, in order: endpoint configured (else 404); rate limit; bearer token in constant time
(401, fixed body); body size and JSON; owner/repo/number/head validated before any forge call
(400); the PR re-fetched from the forge (502 with a fixed body, upstream text never echoed); the
head still current (409) and the PR open and not a draft (409). Then 202 ``{"job_id": N}``
once the job is committed (503 when the store refuses it); repeated calls for the same head
coalesce into the same job.
"""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from auto_review.errors import HostError, StoreError
from auto_review.gateway._bearer import bearer_matches
from auto_review.gateway._body import BodyError, read_body
from auto_review.gateway._intake import Intake
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.gateway._ratelimit import WebhookRateLimiter
from auto_review.hosts import HeadSha, RepoRef, ReviewHost, is_sha
from auto_review.logs import get_logger
from auto_review.review import Trigger

__all__ = ["CiEndpoint"]

_FETCH_TIMEOUT_SECS = 15.0
_log = get_logger("gateway.ci")


class CiEndpoint:
    """The CI review route; ``handle`` is the Starlette endpoint."""

    def __init__(
        self,
        *,
        token: bytes | None,
        limiter: WebhookRateLimiter,
        host: ReviewHost,
        intake: Intake,
        metrics: GatewayMetrics,
        max_body_bytes: int,
        body_deadline_secs: float,
    ) -> None:
        self._token = token
        self._limiter = limiter
        self._host = host
        self._intake = intake
        self._metrics = metrics
        self._max_body = max_body_bytes
        self._deadline = body_deadline_secs

    async def handle(self, request: Request) -> Response:
        if self._token is None:
            return self._answer("disabled", PlainTextResponse("not found", status_code=404))
        client = request.client.host if request.client else "unknown"
        decision = self._limiter.check(client)
        if not decision.allowed:
            return self._answer(
                "rate_limited",
                PlainTextResponse(
                    "rate limit",
                    status_code=429,
                    headers={"Retry-After": str(decision.retry_after)},
                ),
            )
        if not bearer_matches(request.headers.get("authorization", ""), self._token):
            _log.warning("ci_unauthorized", client=client)
            return self._answer("unauthorized", PlainTextResponse("unauthorized", status_code=401))
        try:
            body = await read_body(request, max_bytes=self._max_body, deadline_secs=self._deadline)
        except BodyError as exc:
            return self._answer("bad_request", PlainTextResponse(exc.message, exc.status))
        parsed = _parse(body)
        if isinstance(parsed, str):
            return self._answer("bad_request", PlainTextResponse(parsed, status_code=400))
        repo, number, head_sha, force = parsed
        try:
            async with asyncio.timeout(_FETCH_TIMEOUT_SECS):
                pr = await self._host.get_pull_request(repo, number)
        except (HostError, TimeoutError) as exc:
            _log.warning("ci_fetch_failed", repo=str(repo), number=number, error=type(exc).__name__)
            return self._answer(
                "upstream_error", PlainTextResponse("fetch pull request failed", status_code=502)
            )
        if pr.head_sha != head_sha:
            return self._answer("stale", PlainTextResponse("stale head_sha", status_code=409))
        if pr.draft or not pr.is_open:
            return self._answer(
                "not_reviewable",
                PlainTextResponse("pull request is not reviewable", status_code=409),
            )
        try:
            result = self._intake.enqueue_review(
                repo, number, head_sha, trigger=Trigger.CI, force=force
            )
        except StoreError:
            # A full or read-only state directory: answered like the webhook's 503, so CI can
            # retry, instead of an unhandled exception's 500.
            _log.exception("ci_enqueue_failed", repo=str(repo), number=number)
            return self._answer(
                "error", PlainTextResponse("cannot accept now; retry later", status_code=503)
            )
        outcome = "queued" if result.created else "coalesced"
        return self._answer(
            outcome, JSONResponse({"job_id": result.job_id, "coalesced": not result.created}, 202)
        )

    def _answer(self, outcome: str, response: Response) -> Response:
        self._metrics.ci_requests.labels(outcome=outcome).inc()
        return response


def _parse(body: bytes) -> tuple[RepoRef, int, HeadSha, bool] | str:
    """The validated request, or a fixed error message."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # too deep is malformed
        return "payload decode failed"
    if not isinstance(data, dict):
        return "payload decode failed"
    owner, name = data.get("owner"), data.get("repo")
    number, head, force = data.get("pr_number"), data.get("head_sha"), data.get("force", False)
    if not isinstance(owner, str) or not isinstance(name, str):
        return "owner and repo must be strings"
    try:
        repo = RepoRef(owner, name)
    except ValueError:
        return "unsafe owner/repo path segment"
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 2**53:
        return "pr_number must be a positive integer"
    if not isinstance(head, str) or not is_sha(head.lower()):
        return "head_sha must be a full commit id"
    if not isinstance(force, bool):
        return "force must be a boolean"
    return repo, number, HeadSha(head.lower()), force

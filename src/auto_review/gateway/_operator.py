"""Operator endpoints: /healthz, /readyz, /version, /info, /metrics. None returns a secret.

``/info`` and ``/metrics`` answer only past the ``guard`` (``AR_OPERATOR_TOKEN`` when set);
the other three stay open for liveness and readiness probes.

``/info`` is a stable JSON contract: fields may be added, never renamed or removed. It is built
from non-secret settings, counts and the isolation posture only (a test checks it by value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from auto_review import __version__
from auto_review.errors import StoreError
from auto_review.gateway._bearer import OperatorGuard
from auto_review.gateway._context import IsolationReport
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.gateway._readiness import Readiness
from auto_review.jobs import JobQueue, JobState, PrTracker
from auto_review.settings import Settings

__all__ = ["OperatorEndpoints"]


@dataclass
class OperatorEndpoints:
    settings: Settings
    store_path: str
    metrics: GatewayMetrics
    readiness: Readiness
    queue: JobQueue
    tracker: PrTracker
    posture: IsolationReport
    guard: OperatorGuard
    in_flight: Callable[[], int]
    chat_enabled: Callable[[], bool]
    review_enabled: Callable[[], bool]

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(self, request: Request) -> Response:
        result = await self.readiness.check()
        return JSONResponse(result.as_json(), status_code=200 if result.ready else 503)

    async def version(self, request: Request) -> Response:
        return JSONResponse({"name": "auto-review", "version": __version__})

    async def metrics_endpoint(self, request: Request) -> Response:
        if (refused := self.guard.refusal(request)) is not None:
            return refused
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def info(self, request: Request) -> Response:
        if (refused := self.guard.refusal(request)) is not None:
            return refused
        return JSONResponse(self.info_document())

    def info_document(self) -> dict[str, object]:
        s = self.settings
        tiers = ["reasoning"]
        if s.llm_cheap_model:
            tiers.append("cheap")
        if s.llm_embedding_model:
            tiers.append("embedding")
        try:
            stats = self.queue.stats()
            queue: dict[str, object] = {state.value: stats.total(state) for state in JobState} | {
                "by_kind": stats.counts
            }
            prs: dict[str, object] = dict(self.tracker.count())
        except StoreError:
            queue, prs = {"error": "unavailable"}, {"error": "unavailable"}
        queue["in_flight"] = self.in_flight()
        queue["concurrency"] = s.review_concurrency
        return {
            "name": "auto-review",
            "version": __version__,
            "bot": {"login": s.bot_login, "mention": s.mention_name},
            "stores": {
                "state": f"sqlite:{self.store_path}",
                "dedup": {"backend": "sqlite", "ttl_secs": s.dedup_ttl_secs},
            },
            "model": {"tiers": tiers, "reasoning_model": s.llm_reasoning_model},
            "review_mode": s.review_mode,
            "ci_endpoint": s.ci_review_token is not None,
            "chat_handler": self.chat_enabled(),
            "review_handler": self.review_enabled(),
            "poller": {
                "enabled": s.poll_interval_secs > 0,
                "interval_secs": s.poll_interval_secs,
                "tracked_prs": prs,
            },
            "queue": queue,
            "isolation": self.posture.as_json(),
        }

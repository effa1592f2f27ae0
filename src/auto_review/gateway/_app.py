"""``create_app``: the gateway's Starlette application, every dependency injected.

The app's lifespan owns the background work: on startup it recovers interrupted jobs and starts
the worker pool and the chat poller; on shutdown (after uvicorn has stopped accepting and
finished in-flight requests) it stops the poller, gives running jobs the grace period and
requeues whatever is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import Route

from auto_review.chat import ChatConfig, ChatLedger
from auto_review.errors import ConfigError
from auto_review.gateway._bearer import OperatorGuard
from auto_review.gateway._ci import CiEndpoint
from auto_review.gateway._context import GatewayDeps
from auto_review.gateway._dedup import DeliveryDedup
from auto_review.gateway._intake import Intake
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.gateway._operator import OperatorEndpoints
from auto_review.gateway._poller import ChatPoller
from auto_review.gateway._ratelimit import WebhookRateLimiter
from auto_review.gateway._readiness import Readiness
from auto_review.gateway._webhook import WebhookEndpoint
from auto_review.jobs import (
    STATUS_CONTEXT,
    JobQueue,
    PrTracker,
    ReviewHistory,
    SqliteJobQueue,
    WorkerPool,
)
from auto_review.logs import get_logger
from auto_review.settings import Settings

__all__ = ["Gateway", "create_app"]

_log = get_logger("gateway.app")


@dataclass
class Gateway:
    """The running pieces behind one app (``app.state.gateway``), for serve() and tests."""

    settings: Settings
    deps: GatewayDeps
    metrics: GatewayMetrics
    queue: JobQueue
    tracker: PrTracker
    history: ReviewHistory
    dedup: DeliveryDedup
    workers: WorkerPool
    poller: ChatPoller
    intake: Intake
    readiness: Readiness

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Background work for the lifetime of the block (the app's lifespan)."""
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if self.deps.run_workers:
            await self.workers.recover()
            tasks.append(asyncio.create_task(self.workers.run(), name="workers"))
        if self.deps.run_poller and self.poller.enabled:
            tasks.append(asyncio.create_task(self.poller.run(stop), name="poller"))
        self.metrics.poller_enabled.set(1 if self.deps.run_poller and self.poller.enabled else 0)
        _log.info("gateway_started", concurrency=self.settings.review_concurrency)
        if self.settings.operator_token is None and not self.settings.binds_loopback_only:
            _log.warning(
                "operator_endpoints_unauthenticated",
                bind=self.settings.gateway_bind,
                detail="/info and /metrics answer anyone who reaches this address; "
                "set AR_OPERATOR_TOKEN (32+ bytes) to require a bearer token",
            )
        try:
            yield
        finally:
            stop.set()
            await self.workers.shutdown(self.settings.shutdown_grace_secs)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.dedup.flush()
            _log.info("gateway_stopped")


def create_app(settings: Settings, deps: GatewayDeps) -> Starlette:
    """The HTTP app; see the module docstring for its lifespan."""
    clock = deps.clock
    metrics = deps.metrics or GatewayMetrics()
    queue = deps.queue or SqliteJobQueue(
        deps.store, clock=clock, max_attempts=settings.job_max_attempts
    )
    tracker = deps.tracker or PrTracker(deps.store, clock=clock)
    history = ReviewHistory(deps.store, clock=clock)
    workers = WorkerPool(
        queue,
        review_runner=deps.runner,
        chat_runner=deps.chat_runner,
        host=deps.host,
        history=history,
        concurrency=settings.review_concurrency,
        timeout_secs=settings.review_timeout_secs,
        observer=metrics,
        clock=clock,
        retention_secs=settings.job_retention_days * 86400,
    )
    metrics.bind_queue(queue.stats, lambda: workers.in_flight)
    posture = deps.posture()
    metrics.set_isolation({c: s for c, s in posture.controls.items()} | {"tier": posture.tier})
    intake = Intake(
        queue=queue,
        tracker=tracker,
        host=deps.host,
        metrics=metrics,
        notify=workers.notify,
        review_mode=settings.review_mode,
        mode_resolver=deps.mode_resolver,
        status_context=STATUS_CONTEXT,
        bot_login=settings.bot_login,
        chat_ledger=ChatLedger(deps.store, clock=clock.time),
        chat_config=ChatConfig.from_settings(settings),
    )
    dedup = DeliveryDedup(deps.store, clock=clock, ttl_secs=settings.dedup_ttl_secs)

    def route_limiter() -> WebhookRateLimiter:
        # One per authenticated route: a flood of one must not drain another's budget.
        return WebhookRateLimiter(
            clock=clock,
            rate=settings.webhook_rate_per_sec,
            burst=settings.webhook_burst,
            client_rate=settings.webhook_client_rate_per_sec,
            client_burst=settings.webhook_client_burst,
        )

    readiness = Readiness(
        deps.probes,
        clock=clock,
        ttl_secs=settings.readiness_ttl_secs,
        on_result=metrics.record_readiness,
    )
    poller = ChatPoller(
        host=deps.host,
        tracker=tracker,
        history=history,
        intake=intake,
        metrics=metrics,
        clock=clock,
        bot_login=settings.bot_login,
        mention_name=settings.mention_name,
        interval_secs=settings.poll_interval_secs,
    )
    secret = settings.webhook_secret
    if secret is None:
        # Fail closed: an empty key would make every forged delivery "authentic".
        raise ConfigError("WEBHOOK_SECRET is required", ("WEBHOOK_SECRET is required",))
    webhook = WebhookEndpoint(
        secret=secret.get_secret_value().encode(),
        limiter=route_limiter(),
        dedup=dedup,
        intake=intake,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        body_deadline_secs=settings.body_timeout_secs,
        bot_login=settings.bot_login,
        mention_name=settings.mention_name,
    )
    token = settings.ci_review_token
    ci = CiEndpoint(
        token=token.get_secret_value().encode() if token is not None else None,
        limiter=route_limiter(),
        host=deps.host,
        intake=intake,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        body_deadline_secs=settings.body_timeout_secs,
    )
    operator = OperatorEndpoints(
        settings=settings,
        store_path=deps.store.path,
        metrics=metrics,
        readiness=readiness,
        queue=queue,
        tracker=tracker,
        posture=posture,
        guard=OperatorGuard(
            token=(
                settings.operator_token.get_secret_value().encode()
                if settings.operator_token is not None
                else None
            ),
            limiter=route_limiter(),
        ),
        in_flight=lambda: workers.in_flight,
        chat_enabled=lambda: workers.chat_enabled,
        review_enabled=lambda: workers.review_enabled,
    )
    gateway = Gateway(
        settings=settings,
        deps=deps,
        metrics=metrics,
        queue=queue,
        tracker=tracker,
        history=history,
        dedup=dedup,
        workers=workers,
        poller=poller,
        intake=intake,
        readiness=readiness,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with gateway.running():
            yield

    app = Starlette(
        routes=[
            Route("/webhooks/forgejo", webhook.handle, methods=["POST"]),
            Route("/webhooks/gitea", webhook.handle, methods=["POST"]),
            Route("/reviews/ci", ci.handle, methods=["POST"]),
            Route("/healthz", operator.healthz, methods=["GET"]),
            Route("/readyz", operator.readyz, methods=["GET"]),
            Route("/version", operator.version, methods=["GET"]),
            Route("/info", operator.info, methods=["GET"]),
            Route("/metrics", operator.metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # No slash-toggling 307s: their Location is built from the caller's Host header.
    app.router.redirect_slashes = False
    app.state.gateway = gateway
    return app

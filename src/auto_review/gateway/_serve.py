"""``serve``: run the gateway service in the current process until SIGTERM/SIGINT.

This is the in-process entry point: ``auto-review gateway --bare`` calls it directly, and the
sandbox launcher's inner (confined) process calls it after confinement. It builds the real
components from ``Settings`` (state store, forge client, model client, review pipeline, chat
service), wires them into ``create_app`` and serves until a signal arrives; then intake stops,
running jobs get ``AR_SHUTDOWN_GRACE_SECS`` and the rest are requeued for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from auto_review.chat import ChatConfig, ChatService
from auto_review.errors import LLMError
from auto_review.gateway._app import create_app
from auto_review.gateway._context import (
    GatewayDeps,
    PostureProvider,
    ReviewMode,
    bare_posture,
)
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.gateway._server import build_server
from auto_review.hosts import RepoRef, ReviewHost
from auto_review.hosts.forgejo import ForgejoHost, forgejo_host
from auto_review.jobs import SqliteJobQueue, SystemClock
from auto_review.llm import LLMClient, load_price_table, readiness
from auto_review.logs import get_logger
from auto_review.review import PipelineOptions, ReviewRunner
from auto_review.review.config import load_repo_config
from auto_review.review.pipeline import ReviewPipeline
from auto_review.settings import Settings
from auto_review.store import Store

__all__ = ["RunnerFactory", "ServiceParts", "pipeline_runner", "serve", "serve_async"]

_log = get_logger("gateway.serve")


@dataclass(frozen=True)
class ServiceParts:
    """What a review pipeline is built from."""

    settings: Settings
    store: Store
    host: ReviewHost
    llm: LLMClient
    metrics: GatewayMetrics


RunnerFactory = Callable[[ServiceParts], ReviewRunner]


def pipeline_runner(parts: ServiceParts) -> ReviewRunner:
    """The production review pipeline (the default ``RunnerFactory``)."""
    return ReviewPipeline(
        PipelineOptions.from_settings(parts.settings),
        parts.host,
        parts.llm,
        parts.store,
        prices=load_price_table(parts.settings.price_table_path),
        on_egress_refused=parts.metrics.count_clone_egress_refusals,
    )


def serve(
    settings: Settings,
    *,
    runner_factory: RunnerFactory = pipeline_runner,
    posture: PostureProvider | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Run the gateway in this process until SIGTERM/SIGINT (blocking).

    ``runner_factory`` builds the review pipeline (tests pass a double); ``posture`` reports
    the isolation in force (the sandbox launcher passes its read-back; default: bare).
    """
    asyncio.run(
        serve_async(settings, runner_factory=runner_factory, posture=posture, sockets=sockets)
    )


async def serve_async(
    settings: Settings,
    *,
    runner_factory: RunnerFactory = pipeline_runner,
    posture: PostureProvider | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """The coroutine behind ``serve``."""
    async with _components(settings) as (store, host, llm):
        queue = SqliteJobQueue(store, max_attempts=settings.job_max_attempts)
        # One metrics object for the app and the pipeline, which counts the clone's refusals.
        metrics = GatewayMetrics()
        parts = ServiceParts(settings=settings, store=store, host=host, llm=llm, metrics=metrics)
        chat = ChatService(
            host=host,
            store=store,
            config=ChatConfig.from_settings(settings),
            queue=queue,
            llm=llm,
        )

        async def forge_probe() -> None:
            await host.version()

        async def model_probe() -> None:
            if not (await readiness(llm)).ready:
                raise LLMError("a model tier is not ready")

        async def repo_mode(repo: RepoRef, base_sha: str) -> ReviewMode | None:
            return (await load_repo_config(host, repo, base_sha)).config.review_mode

        app = create_app(
            settings,
            GatewayDeps(
                store=store,
                host=host,
                runner=runner_factory(parts),
                metrics=metrics,
                queue=queue,
                chat_runner=chat,
                clock=SystemClock(),
                probes={"forge": forge_probe, "model": model_probe},
                posture=posture or bare_posture,
                mode_resolver=repo_mode,
            ),
        )
        server = build_server(settings, app)
        isolation = (posture or bare_posture)()
        # One line an operator can grep for: the isolation really in force, as read back.
        _log.info(
            "gateway_listening",
            bind=settings.gateway_bind,
            isolation_tier=isolation.tier,
            isolation_controls=dict(isolation.controls),
            isolation_reasons=isolation.as_json()["reasons"],
        )
        await server.serve(sockets=sockets)


@contextlib.asynccontextmanager
async def _components(
    settings: Settings,
) -> AsyncIterator[tuple[Store, ForgejoHost, LLMClient]]:
    store = Store.in_state_dir(settings.resolved_state_dir())
    try:
        host = forgejo_host(settings.forge())
        try:
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(settings.llm_timeout_secs, connect=10.0),
                trust_env=False,
                follow_redirects=False,
            ) as http:
                yield store, host, LLMClient(settings.llm(), http)
        finally:
            await host.aclose()
    finally:
        store.close()

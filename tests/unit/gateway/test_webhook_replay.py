"""A signed body re-sent under fresh delivery ids (REDTEAM F66): the forge signs only the body."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from tests.unit.gateway.support import build, hold_statuses, hook_headers, payload, recorded

from auto_review.errors import HostError
from auto_review.gateway import Gateway
from auto_review.hosts import Permission, RepoRef
from auto_review.jobs import JobKind, JobState

pytestmark = pytest.mark.anyio


def _client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


def _duplicates(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("auto_review_webhook_duplicates_total") or 0.0


def _request(updated_at: str) -> tuple[dict[str, Any], bytes]:
    """A writer's request for the bot's review, as of ``updated_at``."""
    opened = json.loads(recorded("HookPullRequest.json"))
    data = dict(
        opened,
        action="review_requested",
        requested_reviewer={"login": "auto-review"},
        pull_request=dict(opened["pull_request"], updated_at=updated_at),
    )
    return data, payload(data)


def _finish_reviews(gw: Gateway) -> None:
    """Run every queued review, so a later request is not merely coalesced into one."""
    while (job := gw.queue.claim([JobKind.REVIEW])) is not None:
        gw.queue.finish(job.id, JobState.DONE, result="reviewed", reason="")


def _forced_reviews(gw: Gateway) -> int:
    return sum(1 for j in gw.queue.list_jobs() if j.kind is JobKind.REVIEW and j.force)


async def test_webhook_same_review_request_body_under_five_ids_forces_one_review(
    tmp_path: Path,
) -> None:
    app, gw, host, _ = build(tmp_path)
    data, body = _request("2026-01-01T00:00:00Z")
    host.permissions[data["sender"]["login"]] = Permission.WRITE
    answers = []
    async with _client(app) as client:
        for n in range(5):
            # Alternate the routes: both are signed with the same secret and share one record.
            route = "/webhooks/forgejo" if n % 2 == 0 else "/webhooks/gitea"
            r = await client.post(
                route, content=body, headers=hook_headers("pull_request", body, delivery=f"d-{n}")
            )
            answers.append((r.status_code, r.text))
            _finish_reviews(gw)
    assert answers == [(202, "accepted")] + [(200, "duplicate")] * 4
    assert _forced_reviews(gw) == 1
    assert _duplicates(gw.metrics.registry) == 4


async def test_webhook_two_different_review_requests_force_two_reviews(tmp_path: Path) -> None:
    # Control: a new request (the forge moved updated_at) is no replay, whatever its id.
    app, gw, host, _ = build(tmp_path)
    first, one = _request("2026-01-01T00:00:00Z")
    _, two = _request("2026-01-01T00:00:01Z")
    host.permissions[first["sender"]["login"]] = Permission.WRITE
    async with _client(app) as client:
        for n, body in enumerate((one, two)):
            r = await client.post(
                "/webhooks/forgejo",
                content=body,
                headers=hook_headers("pull_request", body, delivery=f"d-{n}"),
            )
            assert r.status_code == 202
            _finish_reviews(gw)
    assert _forced_reviews(gw) == 2
    assert _duplicates(gw.metrics.registry) == 0


async def test_webhook_body_without_delivery_id_is_still_deduplicated(tmp_path: Path) -> None:
    app, gw, host, _ = build(tmp_path)
    data, body = _request("2026-01-01T00:00:00Z")
    host.permissions[data["sender"]["login"]] = Permission.WRITE
    async with _client(app) as client:
        for _ in range(2):
            r = await client.post(
                "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
            )
            _finish_reviews(gw)
    assert r.text == "duplicate"
    assert _forced_reviews(gw) == 1


async def test_webhook_concurrent_copies_of_a_body_under_two_ids_are_handled_once(
    tmp_path: Path,
) -> None:
    app, _, host, _ = build(tmp_path)
    gate, entered = hold_statuses(host)
    body = recorded("HookPullRequest.json")
    async with _client(app) as client:
        first = asyncio.create_task(
            client.post(
                "/webhooks/forgejo",
                content=body,
                headers=hook_headers("pull_request", body, delivery="d-1"),
            )
        )
        await entered.wait()
        copy = await client.post(
            "/webhooks/forgejo",
            content=body,
            headers=hook_headers("pull_request", body, delivery="d-2"),
        )
        gate.set()
        done = await first
        # The refused copy released its id: once the body is recorded it is a plain duplicate.
        later = await client.post(
            "/webhooks/forgejo",
            content=body,
            headers=hook_headers("pull_request", body, delivery="d-2"),
        )
    assert (done.status_code, copy.status_code, later.text) == (202, 409, "duplicate")
    assert len(host.statuses) == 1


async def test_webhook_failed_body_is_processed_when_sent_again(tmp_path: Path) -> None:
    # Only accepted bodies are recorded: a body the gateway failed on (the forge was down while
    # checking the requester) is handled when the forge redelivers it, under any id.
    app, gw, host, _ = build(tmp_path)
    data, body = _request("2026-01-01T00:00:00Z")
    host.permissions[data["sender"]["login"]] = Permission.WRITE
    real = host.get_permission
    calls = 0

    async def flaky(repo: RepoRef, login: str) -> Permission:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise HostError("forge down")
        return await real(repo, login)

    host.get_permission = flaky  # type: ignore[method-assign]
    async with _client(app) as client:
        answers = [
            (
                await client.post(
                    "/webhooks/forgejo",
                    content=body,
                    headers=hook_headers("pull_request", body, delivery=f"d-{n}"),
                )
            ).status_code
            for n in range(2)
        ]
    assert answers == [502, 202]
    assert _forced_reviews(gw) == 1

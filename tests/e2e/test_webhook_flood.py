"""A bounded webhook flood on loopback: 429s appear, and every accepted delivery counts once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.unit.gateway.support import build, hook_headers, recorded

from auto_review.gateway._server import bound_socket, build_server
from auto_review.jobs import JobKind

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DELIVERIES = 300
CONCURRENCY = 30


def _comment(cid: int) -> bytes:
    base = json.loads(recorded("HookPullRequest.json"))
    return json.dumps(
        {
            "action": "created",
            "issue": {"number": 1, "pull_request": {}},
            "comment": {"id": cid, "body": f"@auto-review ping {cid}", "user": {"login": "bob"}},
            "repository": base["repository"],
            "is_pull": True,
        }
    ).encode()


async def test_webhook_flood_gets_429s_and_every_accepted_delivery_is_queued_once(
    tmp_path: Path,
) -> None:
    app, gw, _, _ = build(
        tmp_path,
        env={
            "AR_WEBHOOK_RATE_PER_SEC": "100",
            "AR_WEBHOOK_BURST": "20",
            "AR_WEBHOOK_CLIENT_RATE_PER_SEC": "1000",
            "AR_WEBHOOK_CLIENT_BURST": "1000",
        },
    )
    sock = bound_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = build_server(gw.settings, app, host="127.0.0.1", port=port)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
    bodies = {cid: _comment(cid) for cid in range(1, DELIVERIES + 1)}
    limit = asyncio.Semaphore(CONCURRENCY)

    async def send(client: httpx.AsyncClient, cid: int) -> tuple[int, int]:
        async with limit:
            body = bodies[cid]
            headers = hook_headers("issue_comment", body, delivery=f"d-{cid}")
            response = await client.post("/webhooks/forgejo", content=body, headers=headers)
            return cid, response.status_code

    try:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
            flood = await asyncio.gather(*(send(client, cid) for cid in bodies))
            answers = Counter(status for _, status in flood)
            assert set(answers) <= {202, 429}
            assert answers[429] > 0
            assert answers[202] > 0
            # The forge redelivers what was refused; paced below the rate, all get in.
            pending = [cid for cid, status in flood if status == 429]
            while pending:
                cid = pending.pop(0)
                if (await send(client, cid))[1] == 429:
                    pending.append(cid)
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.012)
            # Replays of accepted deliveries are recognised and change nothing.
            replayed = [await send(client, cid) for cid in range(1, 21)]
    finally:
        server.should_exit = True
        await serving
        sock.close()
    assert all(status in (200, 429) for _, status in replayed)
    jobs = [j for j in gw.queue.list_jobs(limit=10_000) if j.kind is JobKind.CHAT]
    assert sorted(j.comment_id for j in jobs) == list(bodies)  # every comment exactly once
    reg = gw.metrics.registry
    accepted = reg.get_sample_value(
        "auto_review_webhook_requests_total", {"event": "issue_comment", "outcome": "accepted"}
    )
    assert accepted == DELIVERIES

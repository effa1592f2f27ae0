"""A bounded webhook flood on loopback: 429s appear, and every accepted delivery counts once."""

from __future__ import annotations

import asyncio
import json
import time
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
BURST = 20


class _StoppedClock:
    """Wall time runs; the rate limiter's monotonic time moves only when the test says.

    That makes the flood deterministic on a busy machine: exactly ``BURST`` deliveries get a
    token during the flood, whatever the request rate turns out to be.
    """

    def __init__(self) -> None:
        self.mono = 1000.0

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return self.mono


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
    clock = _StoppedClock()
    app, gw, _, _ = build(
        tmp_path,
        clock=clock,
        env={
            "AR_WEBHOOK_RATE_PER_SEC": "100",
            "AR_WEBHOOK_BURST": str(BURST),
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
            assert answers == {202: BURST, 429: DELIVERIES - BURST}
            # The forge redelivers what was refused; one token's worth of time apart, all get in.
            redelivered = []
            for cid in [cid for cid, status in flood if status == 429]:
                clock.mono += 0.011  # a little over one token (1/100 s)
                redelivered.append((await send(client, cid))[1])
            assert set(redelivered) == {202}
            # Replays of accepted deliveries are recognised and change nothing.
            replayed = []
            for cid in range(1, 21):
                clock.mono += 0.011
                replayed.append(await send(client, cid))
    finally:
        server.should_exit = True
        await serving
        sock.close()
    assert {status for _, status in replayed} == {200}  # "duplicate", nothing queued again
    jobs = [j for j in gw.queue.list_jobs(limit=10_000) if j.kind is JobKind.CHAT]
    assert sorted(j.comment_id for j in jobs) == list(bodies)  # every comment exactly once
    reg = gw.metrics.registry
    accepted = reg.get_sample_value(
        "auto_review_webhook_requests_total", {"event": "issue_comment", "outcome": "accepted"}
    )
    assert accepted == DELIVERIES

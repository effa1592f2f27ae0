"""The poller as the backstop for pushes whose webhook never came (REDTEAM F88)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.unit.gateway.support import SHA_A, SHA_B, MemoryHost, build, hook_headers, pr, recorded

from auto_review.hosts import RepoRef
from auto_review.jobs import HistoryEntry, JobKind

pytestmark = pytest.mark.anyio

REPO = "alice/demo"
DIRECT = {"AR_REVIEW_MODE": "direct"}


def _reviews(gw: object) -> list[tuple[str, str]]:
    jobs = gw.queue.list_jobs()  # type: ignore[attr-defined]
    return [(j.head_sha, j.trigger.value) for j in jobs if j.kind is JobKind.REVIEW]


def _poller_reviews(gw: object) -> float | None:
    return gw.metrics.registry.get_sample_value(  # type: ignore[attr-defined,no-any-return]
        "auto_review_jobs_enqueued_total", {"kind": "review", "source": "poller"}
    )


async def test_poller_queues_the_review_of_a_push_whose_webhook_was_lost(tmp_path: Path) -> None:
    host = MemoryHost()
    host.add(pr(REPO, 1, head=SHA_A))
    _, gw, _, _ = build(tmp_path, host=host, env=DIRECT)
    gw.tracker.observe(RepoRef.parse(REPO), 1, head_sha=SHA_A, is_open=True)
    await gw.poller.run_once()
    assert _reviews(gw) == []  # control: the head it knew is not queued again
    gw.deps.store.close()
    host.move_head(REPO, 1, SHA_B)  # pushed while the gateway was down, no webhook
    _, gw2, _, _ = build(tmp_path, host=host, env=DIRECT)
    await gw2.poller.run_once()  # the first cycle after a start re-reads every PR
    assert _reviews(gw2) == [(SHA_B, "webhook")]  # a push's trigger: pause applies, not forced
    job = gw2.queue.list_jobs()[0]
    assert not job.force
    assert _poller_reviews(gw2) == 1
    await gw2.poller.run_once()
    assert _reviews(gw2) == [(SHA_B, "webhook")]


async def test_poller_after_a_restart_leaves_known_heads_alone(tmp_path: Path) -> None:
    host = MemoryHost()
    host.add(pr(REPO, 1, head=SHA_A))
    host.add(pr(REPO, 2, head=SHA_B))
    _, gw, _, _ = build(tmp_path, host=host, env=DIRECT)
    gw.tracker.observe(RepoRef.parse(REPO), 1, head_sha=SHA_A, is_open=True)
    gw.tracker.observe(RepoRef.parse(REPO), 2, head_sha=None, is_open=True)  # seen by a mention
    await gw.poller.run_once()
    assert _reviews(gw) == []
    tracked = gw.tracker.get(RepoRef.parse(REPO), 2)
    assert tracked is not None
    assert tracked.head_sha == SHA_B  # recorded, so a later push to it is caught


async def test_poller_missed_push_follows_the_review_mode_and_drafts(tmp_path: Path) -> None:
    host = MemoryHost()
    host.add(pr(REPO, 1, head=SHA_B))
    host.add(pr(REPO, 2, head=SHA_B, draft=True))
    _, gw, _, _ = build(tmp_path / "ci", host=host)  # ci mode: CI asks for the review
    repo = RepoRef.parse(REPO)
    gw.tracker.observe(repo, 1, head_sha=SHA_A, is_open=True)
    await gw.poller.run_once()
    assert _reviews(gw) == []
    (tmp_path / "direct").mkdir()
    _, gw2, _, _ = build(tmp_path / "direct", host=host, env=DIRECT)
    gw2.tracker.observe(repo, 2, head_sha=SHA_A, is_open=True, draft=True)
    await gw2.poller.run_once()
    assert _reviews(gw2) == []  # a draft's push queues nothing, as its webhook would not


async def test_poller_and_webhook_seeing_the_same_push_queue_one_review(tmp_path: Path) -> None:
    data = json.loads(recorded("HookPullRequestUpdated.json"))  # "synchronized" to this head
    head = data["pull_request"]["head"]["sha"]
    name, number = data["repository"]["full_name"], data["number"]
    host = MemoryHost()
    host.add(pr(name, number, head=head))
    app, gw, _, _ = build(tmp_path, host=host, env=DIRECT)
    gw.tracker.observe(RepoRef.parse(name), number, head_sha=SHA_A, is_open=True)
    await gw.poller.run_once()  # the poller first, then the webhook arrives late
    body = json.dumps(data).encode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        r = await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    assert r.status_code == 202
    await gw.poller.run_once()
    assert _reviews(gw) == [(head, "webhook")]
    assert _poller_reviews(gw) == 1


async def test_poller_leaves_a_new_head_alone_that_a_review_job_already_ended_on(
    tmp_path: Path,
) -> None:
    # A chat "@bot review" reviews the forge's head without recording it as the PR's head; an
    # automatic review queued after it would, on a paused PR, replace its status with "paused".
    host = MemoryHost()
    host.add(pr(REPO, 1, head=SHA_B))
    _, gw, _, _ = build(tmp_path, host=host, env=DIRECT)
    repo = RepoRef.parse(REPO)
    gw.tracker.observe(repo, 1, head_sha=SHA_A, is_open=True)
    gw.history.record(HistoryEntry(repo, 1, SHA_B, "chat", "posted", "posted"))
    await gw.poller.run_once()
    assert _reviews(gw) == []

"""The chat poller: seeding, persisted cursors, both comment kinds, closed PRs, webhook overlap."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.unit.gateway.support import MemoryHost, build, hook_headers, pr, recorded

from auto_review.errors import HostUnavailable
from auto_review.hosts import Comment, CommentKind, RepoRef
from auto_review.jobs import JobKind

pytestmark = pytest.mark.anyio

REPO = "alice/demo"


def _host() -> MemoryHost:
    host = MemoryHost()
    host.add(pr(REPO, 1))
    host.comment(REPO, 1, 1, "@auto-review an old request")
    host.comment(REPO, 1, 2, "@auto-review an old inline request", review=True)
    return host


def _chat_ids(gw: object) -> list[tuple[str, int]]:
    jobs = gw.queue.list_jobs()  # type: ignore[attr-defined]
    return sorted((j.comment_kind.value, j.comment_id) for j in jobs if j.kind is JobKind.CHAT)


async def test_poller_first_sight_seeds_cursors_without_dispatching(tmp_path: Path) -> None:
    host = _host()
    _, gw, _, _ = build(tmp_path, host=host)
    gw.tracker.observe(RepoRef.parse(REPO), 1, head_sha="a" * 40, is_open=True)
    assert await gw.poller.run_once() == 0
    tracked = gw.tracker.get(RepoRef.parse(REPO), 1)
    assert tracked is not None
    assert (tracked.issue_cursor, tracked.review_cursor) == (1, 2)
    host.comment(REPO, 1, 3, "new, @auto-review please")
    host.comment(REPO, 1, 4, "inline: @auto-review why", review=True)
    host.comment(REPO, 1, 5, "no mention here")
    host.comment(REPO, 1, 6, "@auto-review my own", author="auto-review")
    assert await gw.poller.run_once() == 2  # positive control: new mentions are queued
    assert _chat_ids(gw) == [("issue", 3), ("review", 4)]


async def test_poller_cursors_survive_a_restart_and_catch_mentions_made_while_down(
    tmp_path: Path,
) -> None:
    host = _host()
    _, gw, _, _ = build(tmp_path, host=host)
    gw.tracker.observe(RepoRef.parse(REPO), 1, head_sha="a" * 40, is_open=True)
    await gw.poller.run_once()
    gw.deps.store.close()
    host.comment(REPO, 1, 7, "@auto-review while you were down")  # gateway is down
    _, gw2, _, _ = build(tmp_path, host=host)  # same state file
    assert await gw2.poller.run_once() == 1
    assert await gw2.poller.run_once() == 0  # and no replay afterwards
    assert _chat_ids(gw2) == [("issue", 7)]


async def test_poller_and_webhook_never_queue_the_same_comment_twice(tmp_path: Path) -> None:
    host = _host()
    app, gw, _, _ = build(tmp_path, host=host)
    gw.tracker.observe(RepoRef.parse(REPO), 1, head_sha="a" * 40, is_open=True)
    await gw.poller.run_once()
    comment = host.comment(REPO, 1, 9, "@auto-review once please")
    base = json.loads(recorded("HookPullRequest.json"))
    repo = dict(base["repository"], name="demo", full_name=REPO)
    body = json.dumps(
        {
            "action": "created",
            "issue": {"number": 1, "pull_request": {}},
            "comment": {"id": comment.id, "body": comment.body, "user": {"login": "bob"}},
            "repository": repo,
            "is_pull": True,
        }
    ).encode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        r = await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("issue_comment", body)
        )
    assert r.status_code == 202
    assert await gw.poller.run_once() == 0
    assert _chat_ids(gw) == [("issue", 9)]


async def test_poller_skips_closed_prs_and_drops_them_when_found_closed(tmp_path: Path) -> None:
    host = _host()
    host.add(pr(REPO, 2, state="closed"))
    _, gw, _, _ = build(tmp_path, host=host)
    repo = RepoRef.parse(REPO)
    gw.tracker.observe(repo, 1, head_sha="a" * 40, is_open=False)
    assert gw.tracker.open_prs() == []
    await gw.poller.run_once()
    assert "list_issue_comments" not in host.calls
    gw.tracker.observe(repo, 2, head_sha="a" * 40, is_open=True)
    with gw.deps.store.write() as conn:  # last refreshed long ago: the poller re-reads the PR
        conn.execute("UPDATE tracked_prs SET refreshed_at = 0")
    await gw.poller.run_once()
    assert gw.tracker.open_prs() == []


async def test_poller_counts_per_pr_failures_and_continues(tmp_path: Path) -> None:
    host = _host()
    _, gw, _, _ = build(tmp_path, host=host)
    gw.tracker.observe(RepoRef.parse(REPO), 1, head_sha="a" * 40, is_open=True)
    host.fail_with = HostUnavailable("down")
    await gw.poller.run_once()
    reg = gw.metrics.registry
    assert reg.get_sample_value("auto_review_poller_failures_total", {"scope": "pr"}) == 1
    assert reg.get_sample_value("auto_review_poller_cycles_total") == 1
    tracked = gw.tracker.get(RepoRef.parse(REPO), 1)
    assert tracked is not None
    assert tracked.cursor(CommentKind.ISSUE) is None  # not seeded from a failed listing


async def test_poller_skips_mentions_edited_after_they_were_written(tmp_path: Path) -> None:
    host = _host()
    _, gw, _, _ = build(tmp_path, host=host)
    gw.tracker.observe(RepoRef.parse(REPO), 1, head_sha="a" * 40, is_open=True)
    await gw.poller.run_once()
    at = "2026-11-29T10:00:00Z"
    comments = host.issue_comments[(REPO, 1)]
    for cid, updated in ((3, "2026-11-29T10:00:05Z"), (4, at), (5, "2026-11-29T10:00:05+00:00")):
        comments.append(
            Comment(cid, CommentKind.ISSUE, "olga", "@auto-review pause", at, updated_at=updated)
        )
    # Timestamps the poller cannot compare but that differ count as an edit.
    comments.append(
        Comment(6, CommentKind.ISSUE, "olga", "@auto-review pause", at, updated_at="later")
    )
    assert await gw.poller.run_once() == 1
    assert _chat_ids(gw) == [("issue", 4)]  # only the unedited one


async def test_poller_catches_a_mention_whose_webhook_was_lost_before_its_first_poll(
    tmp_path: Path,
) -> None:
    # REDTEAM F86: a PR known from its "opened" event was first polled only to seed its
    # cursors, past every comment; a mention whose delivery failed (the gateway restarting, a
    # 503) in that window was never answered. A new PR has no history to skip.
    host = MemoryHost()
    host.add(pr("gordon/hello-world", 1))
    app, gw, _, _ = build(tmp_path, host=host)
    body = recorded("HookPullRequest.json")  # action "opened"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        r = await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    assert r.status_code == 202
    host.comment("gordon/hello-world", 1, 5, "@auto-review explain")  # its webhook was lost
    host.comment("gordon/hello-world", 1, 6, "@auto-review why", review=True)
    assert await gw.poller.run_once() == 2
    assert await gw.poller.run_once() == 0
    # Control: a PR first seen another way than being opened still only seeds (no replay).
    host.add(pr("gordon/hello-world", 2))
    host.comment("gordon/hello-world", 2, 7, "@auto-review an old request")
    gw.tracker.observe(RepoRef.parse("gordon/hello-world"), 2, head_sha="a" * 40, is_open=True)
    assert await gw.poller.run_once() == 0

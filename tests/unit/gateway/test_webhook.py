"""The webhook boundary: rate limit, body, signature, classification, dedup, decoding, events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from tests.unit.gateway.support import (
    SHA_A,
    SHA_B,
    MemoryHost,
    build,
    hold_statuses,
    hook_headers,
    payload,
    pr,
    recorded,
)

from auto_review.errors import HostAuthError, HostError, HostNotFound
from auto_review.gateway._dedup import body_key
from auto_review.hosts import Permission, RepoRef
from auto_review.jobs import JobKind, JobState

pytestmark = pytest.mark.anyio


def _client(app: object, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_webhook_accepts_recorded_pull_request_signed_each_way(tmp_path: Path) -> None:
    app, gw, _, _ = build(tmp_path)
    recorded_body = recorded("HookPullRequest.json")
    async with _client(app) as client:
        for n, header in enumerate(
            ("X-Forgejo-Signature", "X-Gitea-Signature", "X-Hub-Signature-256")
        ):
            # Another byte per delivery: a byte-identical body would be answered as a replay.
            body = recorded_body + b"\n" * n
            r = await client.post(
                "/webhooks/forgejo",
                content=body,
                headers=hook_headers("pull_request", body, header=header),
            )
            assert r.status_code == 202, header
        body = recorded_body + b"\n" * 3
        r = await client.post(
            "/webhooks/gitea", content=body, headers=hook_headers("pull_request", body)
        )
        assert r.status_code == 202
    tracked = gw.tracker.get(gw.tracker.open_prs()[0].repo, 1)
    assert tracked is not None
    assert tracked.head_sha == "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "missing"),
        ({"X-Forgejo-Signature": "zz" * 32}, 400, "malformed"),
        ({"X-Forgejo-Signature": "ab" * 10}, 400, "malformed"),
        ({"X-Hub-Signature-256": "a" * 64}, 400, "malformed"),
        ({"X-Forgejo-Signature": "ab" * 32}, 401, "mismatch"),
        ({"X-Hub-Signature-256": "sha256=" + "ab" * 32}, 401, "mismatch"),
    ],
)
async def test_webhook_refuses_bad_signature_and_counts_its_reason(
    tmp_path: Path, headers: dict[str, str], status: int, reason: str
) -> None:
    app, gw, _, _ = build(tmp_path)
    body = recorded("HookPullRequest.json")
    async with _client(app) as client:
        r = await client.post(
            "/webhooks/forgejo",
            content=body,
            headers={"X-Forgejo-Event": "pull_request", **headers},
        )
    assert r.status_code == status
    reg = gw.metrics.registry
    assert _sample(reg, "auto_review_webhook_signature_failures_total", reason=reason) == 1
    others = {"missing", "malformed", "mismatch"} - {reason}
    assert all(
        _sample(reg, "auto_review_webhook_signature_failures_total", reason=o) == 0 for o in others
    )
    assert gw.tracker.open_prs() == []  # nothing was decoded or recorded


async def test_webhook_signature_over_other_body_is_a_mismatch(tmp_path: Path) -> None:
    app, _gw, _, _ = build(tmp_path)
    body = recorded("HookPullRequest.json")
    headers = hook_headers("pull_request", body)
    async with _client(app) as client:
        r = await client.post("/webhooks/forgejo", content=body + b" ", headers=headers)
        ok = await client.post("/webhooks/forgejo", content=body, headers=headers)
    assert r.status_code == 401
    assert ok.status_code == 202  # positive control: the same headers with the signed body


async def test_webhook_replayed_delivery_is_answered_duplicate_once_accepted(
    tmp_path: Path,
) -> None:
    app, gw, _, _ = build(tmp_path)
    body = recorded("HookPullRequest.json")
    headers = hook_headers("pull_request", body, delivery="d-1")
    async with _client(app) as client:
        first = await client.post("/webhooks/forgejo", content=body, headers=headers)
        second = await client.post("/webhooks/forgejo", content=body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.text == "duplicate"
    assert _sample(gw.metrics.registry, "auto_review_webhook_duplicates_total") == 1


async def test_webhook_concurrent_copies_of_a_delivery_are_handled_once(tmp_path: Path) -> None:
    # A copy arriving while the first is still being handled (here: waiting on the forge) gets
    # 409, not a second handling; once the first is accepted, copies are duplicates.
    app, _, host, _ = build(tmp_path)
    gate, entered = hold_statuses(host)
    body = recorded("HookPullRequest.json")
    headers = hook_headers("pull_request", body, delivery="d-9")
    async with _client(app) as client:
        first = asyncio.create_task(client.post("/webhooks/forgejo", content=body, headers=headers))
        await entered.wait()
        copy = await client.post("/webhooks/forgejo", content=body, headers=headers)
        gate.set()
        done = await first
        later = await client.post("/webhooks/forgejo", content=body, headers=headers)
    assert (done.status_code, copy.status_code, later.text) == (202, 409, "duplicate")
    assert len(host.statuses) == 1  # the "waiting for CI" status, set once


async def test_webhook_failed_delivery_is_processed_when_retried(tmp_path: Path) -> None:
    app, gw, _, _ = build(tmp_path, env={"AR_REVIEW_MODE": "direct"})
    good = json.loads(recorded("HookPullRequest.json"))
    bad = dict(good, pull_request=dict(good["pull_request"], head={"sha": "not-a-sha"}))
    async with _client(app) as client:
        b1 = payload(bad)
        r1 = await client.post(
            "/webhooks/forgejo",
            content=b1,
            headers=hook_headers("pull_request", b1, delivery="d-2"),
        )
        b2 = payload(good)
        r2 = await client.post(
            "/webhooks/forgejo",
            content=b2,
            headers=hook_headers("pull_request", b2, delivery="d-2"),
        )
    assert (r1.status_code, r2.status_code) == (400, 202)
    assert len(gw.queue.list_jobs(states=[JobState.QUEUED])) == 1


async def test_webhook_dedup_table_is_pruned_after_ttl(tmp_path: Path) -> None:
    class Clock:
        now = 1_000_000.0

        def time(self) -> float:
            return self.now

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    app, gw, _, _ = build(tmp_path, clock=clock, env={"AR_DEDUP_TTL_SECS": "3600"})
    body = recorded("HookPullRequest.json")
    async with _client(app) as client:
        await client.post(
            "/webhooks/forgejo",
            content=body,
            headers=hook_headers("pull_request", body, delivery="old"),
        )
        assert gw.dedup.count() == 2  # the delivery id and the body's digest
        clock.now += 3601
        assert not gw.dedup.seen("old")  # expired ids no longer count as replays
        assert not gw.dedup.seen(body_key(body))
        await client.post(
            "/webhooks/forgejo",
            content=body,
            headers=hook_headers("pull_request", body, delivery="new"),
        )
    assert gw.dedup.count() == 2  # "old" was pruned when "new" was recorded


async def test_webhook_oversize_body_is_refused_with_413(tmp_path: Path) -> None:
    app, _gw, _, _ = build(tmp_path, env={"AR_MAX_BODY_BYTES": "2048"})
    big = b"{" + b" " * 4096 + b"}"
    async with _client(app) as client:
        declared = await client.post(
            "/webhooks/forgejo", content=big, headers=hook_headers("pull_request", big)
        )

        async def chunks():  # no Content-Length: the cap is enforced while streaming
            for _ in range(8):
                yield b" " * 512

        streamed = await client.post(
            "/webhooks/forgejo", content=chunks(), headers={"X-Forgejo-Event": "pull_request"}
        )
        small = recorded("HookPullRequest.json")
        ok = await client.post(
            "/webhooks/forgejo", content=small, headers=hook_headers("pull_request", small)
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert ok.status_code == 202  # positive control below the cap


async def test_webhook_unknown_event_is_accepted_and_ignored(tmp_path: Path) -> None:
    app, gw, _, _ = build(tmp_path)
    body = recorded("HookPush.json")
    async with _client(app) as client:
        r = await client.post("/webhooks/forgejo", content=body, headers=hook_headers("push", body))
    assert r.status_code == 202
    reg = gw.metrics.registry
    assert _sample(reg, "auto_review_webhook_requests_total", event="other", outcome="ignored") == 1


async def test_webhook_ping_answers_pong(tmp_path: Path) -> None:
    app, _, _, _ = build(tmp_path)
    body = b'{"hook_id": 1}'
    async with _client(app) as client:
        r = await client.post("/webhooks/forgejo", content=body, headers=hook_headers("ping", body))
    assert (r.status_code, r.text) == (200, "pong")


@pytest.mark.parametrize(
    ("body", "klass"),
    [
        (b"{not json", "json"),
        (b'{"action": "opened"}', "schema"),
        (b"\xff\xfe", "json"),
        # Nested deeper than the parser goes (10 KB): a 500 and a traceback before the fix.
        (b"[" * 5_000 + b"]" * 5_000, "json"),
    ],
)
async def test_webhook_undecodable_payload_is_400_counted_by_class(
    tmp_path: Path, body: bytes, klass: str
) -> None:
    app, gw, _, _ = build(tmp_path)
    async with _client(app) as client:
        r = await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    assert r.status_code == 400
    reg = gw.metrics.registry
    assert (
        _sample(
            reg,
            "auto_review_webhook_payload_failures_total",
            event="pull_request",
            **{"class": klass},
        )
        == 1
    )


async def test_webhook_rate_limit_answers_429_before_checking_signature(tmp_path: Path) -> None:
    app, gw, _, _ = build(
        tmp_path, env={"AR_WEBHOOK_CLIENT_BURST": "2", "AR_WEBHOOK_CLIENT_RATE_PER_SEC": "0.001"}
    )
    async with _client(app, "10.0.0.1") as noisy, _client(app, "10.0.0.2") as other:
        answers = [
            (await noisy.post("/webhooks/forgejo", content=b"x")).status_code for _ in range(4)
        ]
        fine = await other.post("/webhooks/forgejo", content=b"x")
        limited = await noisy.post("/webhooks/forgejo", content=b"x")
    assert answers == [401, 401, 429, 429]
    assert int(limited.headers["retry-after"]) >= 1
    assert fine.status_code == 401  # another client still reaches the signature check
    reg = gw.metrics.registry
    assert _sample(reg, "auto_review_webhook_signature_failures_total", reason="missing") == 3
    assert _sample(reg, "auto_review_webhook_rate_limited_total", scope="client") == 3


async def test_webhook_direct_mode_queues_review_and_ci_mode_sets_waiting_status(
    tmp_path: Path,
) -> None:
    body = recorded("HookPullRequest.json")
    app, gw, host, _ = build(tmp_path / "ci")
    async with _client(app) as client:
        await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    assert gw.queue.list_jobs() == []
    assert [s.state.value for _, _, s in host.statuses] == ["pending"]
    assert "waiting for CI" in host.statuses[0][2].description

    app, gw, host, _ = build(tmp_path / "direct", env={"AR_REVIEW_MODE": "direct"})
    async with _client(app) as client:
        await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    jobs = gw.queue.list_jobs()
    assert [(j.kind, j.head_sha, j.trigger.value) for j in jobs] == [
        (JobKind.REVIEW, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "webhook")
    ]


async def test_webhook_repo_mode_resolver_overrides_the_global_mode(tmp_path: Path) -> None:
    async def direct(repo: object, base_sha: str) -> str:
        assert base_sha == "9353195a19e45482665306e466c832c46560532d"  # the PR's base commit
        return "direct"

    body = recorded("HookPullRequest.json")
    app, gw, _, _ = build(tmp_path, mode_resolver=direct)
    async with _client(app) as client:
        await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    assert len(gw.queue.list_jobs()) == 1


async def test_webhook_draft_is_not_reviewed_and_close_cancels_queued_work(
    tmp_path: Path,
) -> None:
    app, gw, _host, _ = build(tmp_path, env={"AR_REVIEW_MODE": "direct"})
    opened = json.loads(recorded("HookPullRequest.json"))
    draft = dict(opened, pull_request=dict(opened["pull_request"], draft=True))
    closed = dict(
        opened, action="closed", pull_request=dict(opened["pull_request"], state="closed")
    )
    async with _client(app) as client:
        for data in (draft, opened, closed):
            b = payload(data)
            await client.post(
                "/webhooks/forgejo", content=b, headers=hook_headers("pull_request", b)
            )
    jobs = gw.queue.list_jobs()
    assert [j.state for j in jobs] == [JobState.CANCELLED]  # only the non-draft was queued
    assert gw.tracker.open_prs() == []


@pytest.mark.parametrize("mode", ["ci", "direct"])
async def test_webhook_a_draft_marked_ready_is_queued_for_review_in_either_mode(
    tmp_path: Path, mode: str
) -> None:
    # F73: a draft's head is left pending, not green; Forgejo says "ready" only by an edit of
    # the title, and CI (refused while it was a draft) does not run again.
    app, gw, _host, _ = build(tmp_path, env={"AR_REVIEW_MODE": mode})
    opened = json.loads(recorded("HookPullRequest.json"))
    draft = dict(opened, pull_request=dict(opened["pull_request"], draft=True))
    edited_draft = dict(draft, action="edited")
    ready = dict(opened, action="edited")
    async with _client(app) as client:
        for data in (draft, edited_draft, ready, ready):
            b = payload(data)
            await client.post(
                "/webhooks/forgejo", content=b, headers=hook_headers("pull_request", b)
            )
    jobs = gw.queue.list_jobs()
    # One job: an edit of a PR that was not a draft (the second "ready") queues nothing.
    assert [(j.kind, j.head_sha, j.trigger.value) for j in jobs] == [
        (JobKind.REVIEW, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "webhook")
    ]


async def test_webhook_recorded_synchronized_supersedes_older_queued_head(tmp_path: Path) -> None:
    app, gw, _, _ = build(tmp_path, env={"AR_REVIEW_MODE": "direct"})
    data = json.loads(recorded("HookPullRequestUpdated.json"))
    older = dict(data, pull_request=dict(data["pull_request"], head={"sha": SHA_B, "ref": "x"}))
    async with _client(app) as client:
        for item in (older, data):
            b = payload(item)
            r = await client.post(
                "/webhooks/forgejo", content=b, headers=hook_headers("pull_request", b)
            )
            assert r.status_code == 202
    states = {j.head_sha: j.state for j in gw.queue.list_jobs()}
    assert states == {
        SHA_B: JobState.SUPERSEDED,
        "788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25": JobState.QUEUED,
    }


async def test_webhook_review_requested_from_the_bot_queues_a_forced_review_in_ci_mode(
    tmp_path: Path,
) -> None:
    """Requesting the bot's review is an explicit ask: queued, forced, in CI mode; a repeated
    request coalesces; a request to someone else, or on a draft, queues nothing."""
    app, gw, host, _ = build(tmp_path)  # AR_REVIEW_MODE defaults to ci
    opened = json.loads(recorded("HookPullRequest.json"))
    host.permissions[opened["sender"]["login"]] = Permission.WRITE
    bot = {"login": "Auto-Review", "username": "Auto-Review"}  # logins compare case-blind
    other = dict(opened, action="review_requested", requested_reviewer={"login": "carol"})
    draft = dict(
        opened,
        action="review_requested",
        requested_reviewer=bot,
        pull_request=dict(opened["pull_request"], draft=True),
    )
    asked = dict(opened, action="review_requested", requested_reviewer=bot)
    # Asked again: Forgejo moved updated_at (a byte-identical body would be a replay, F66).
    again = dict(
        asked, pull_request=dict(opened["pull_request"], updated_at="2026-01-01T00:00:01Z")
    )
    answers = []
    async with _client(app) as client:
        for data in (other, draft, asked, again):
            b = payload(data)
            r = await client.post(
                "/webhooks/forgejo", content=b, headers=hook_headers("pull_request", b)
            )
            answers.append(r.status_code)
    assert answers == [202] * 4
    jobs = gw.queue.list_jobs()
    assert [(j.head_sha, j.trigger.value, j.force) for j in jobs] == [
        ("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "review_request", True)
    ]
    reg = gw.metrics.registry
    assert _sample(reg, "auto_review_jobs_enqueued_total", kind="review", source="review_request")


@pytest.mark.parametrize(
    "answer",
    [Permission.READ, HostAuthError("only repo admins may ask"), HostNotFound("no such user")],
    ids=["reader", "unverifiable", "not-a-collaborator"],
)
async def test_webhook_review_request_needs_the_requesters_write_access(
    tmp_path: Path, answer: Permission | HostError
) -> None:
    """Forgejo lets a PR's author request reviewers: a reader's request, or one the bot cannot
    check (it is no repo admin), queues nothing, as ``@bot review`` would not."""
    app, gw, host, _ = build(tmp_path)
    opened = json.loads(recorded("HookPullRequest.json"))
    host.permissions[opened["sender"]["login"]] = answer
    asked = dict(opened, action="review_requested", requested_reviewer={"login": "auto-review"})
    async with _client(app) as client:
        b = payload(asked)
        r = await client.post(
            "/webhooks/forgejo", content=b, headers=hook_headers("pull_request", b)
        )
    assert r.status_code == 202
    assert "get_permission" in host.calls
    assert gw.queue.list_jobs() == []


async def test_webhook_review_requests_count_against_the_chat_limit(tmp_path: Path) -> None:
    """Requesting the bot's review forces a review like ``@bot review``; it must not be a way
    round that command's hourly limit (each forced review spends model budget)."""
    app, gw, host, _ = build(tmp_path, env={"AR_CHAT_USER_RATE_PER_HOUR": "2"})
    opened = json.loads(recorded("HookPullRequest.json"))
    host.permissions[opened["sender"]["login"]] = Permission.WRITE
    asked = dict(opened, action="review_requested", requested_reviewer={"login": "auto-review"})
    async with _client(app) as client:
        for n, delivery in enumerate(("r1", "r2", "r3")):
            # Each request moves the PR's updated_at, as Forgejo's does (a replay is F66's).
            when = f"2026-01-01T00:00:0{n}Z"
            b = payload(dict(asked, pull_request=dict(asked["pull_request"], updated_at=when)))
            r = await client.post(
                "/webhooks/forgejo",
                content=b,
                headers=hook_headers("pull_request", b, delivery=delivery),
            )
            assert r.status_code == 202
            # Each review ran before the next request, so none is merely "already queued".
            job = gw.queue.claim([JobKind.REVIEW])
            if job is not None:
                gw.queue.finish(job.id, JobState.DONE, result="reviewed", reason="")
    reviews = [j for j in gw.queue.list_jobs() if j.kind is JobKind.REVIEW]
    assert len(reviews) == 2


def _issue_comment(
    body: str, *, author: str = "bob", cid: int = 7, is_pull: bool = True, action: str = "created"
) -> bytes:
    base = json.loads(recorded("HookPullRequest.json"))
    return payload(
        {
            "action": action,
            "issue": {"number": 1, "pull_request": {"merged": False} if is_pull else None},
            "comment": {"id": cid, "body": body, "user": {"login": author}},
            "repository": base["repository"],
            "sender": {"login": author},
            "is_pull": is_pull,
        }
    )


async def test_webhook_mention_becomes_one_chat_job_and_own_comment_is_ignored(
    tmp_path: Path,
) -> None:
    app, gw, _, _ = build(tmp_path)
    async with _client(app) as client:
        for b in (
            _issue_comment("@auto-review please look", cid=7),
            _issue_comment("@auto-review please look", cid=7),  # same comment, new delivery
            _issue_comment("@Auto-Review done", author="Auto-Review", cid=8),
            _issue_comment("thanks, no mention", cid=9),
            _issue_comment("@auto-reviewer is someone else", cid=10),
            _issue_comment("@auto-review on an issue", cid=11, is_pull=False),
        ):
            r = await client.post(
                "/webhooks/forgejo", content=b, headers=hook_headers("issue_comment", b)
            )
            assert r.status_code == 202
    jobs = gw.queue.list_jobs()
    assert [(j.kind, j.comment_id, j.author, j.state) for j in jobs] == [
        (JobKind.CHAT, 7, "bob", JobState.QUEUED)
    ]


async def test_webhook_never_acts_on_edited_or_deleted_comments(tmp_path: Path) -> None:
    """A command is credited to the comment's author, and Forgejo lets writers edit anyone's
    comment (its ``edited`` delivery names the editor only as sender): an edit that adds a
    command, or a deletion, queues nothing."""
    app, gw, _, _ = build(tmp_path)
    async with _client(app) as client:
        for action, cid in (("edited", 7), ("deleted", 8), ("created", 9)):
            b = _issue_comment("@auto-review approve", cid=cid, action=action)
            r = await client.post(
                "/webhooks/forgejo", content=b, headers=hook_headers("issue_comment", b)
            )
            assert r.status_code == 202
    # Positive control: the created one is queued.
    assert [j.comment_id for j in gw.queue.list_jobs()] == [9]


async def test_webhook_review_comment_without_id_is_resolved_through_the_forge(
    tmp_path: Path,
) -> None:
    host = MemoryHost()
    host.comment("gordon/hello-world", 1, 41, "@auto-review why?", author="bob", review=True)
    app, gw, _, _ = build(tmp_path, host=host)
    base = json.loads(recorded("HookPullRequest.json"))
    data = dict(
        base,
        action="reviewed",
        review={"type": "pull_request_review_comment", "content": "@auto-review why?"},
        sender={"login": "bob"},
    )
    b = payload(data)
    async with _client(app) as client:
        r = await client.post(
            "/webhooks/forgejo", content=b, headers=hook_headers("pull_request_comment", b)
        )
    assert r.status_code == 202
    [job] = gw.queue.list_jobs()
    assert (job.comment_id, job.comment_kind.value if job.comment_kind else None) == (41, "review")


async def test_webhook_forge_failure_while_resolving_is_retryable(tmp_path: Path) -> None:
    from auto_review.errors import HostUnavailable

    host = MemoryHost(fail_with=HostUnavailable("down", status=503))
    app, gw, _, _ = build(tmp_path, host=host)
    base = json.loads(recorded("HookPullRequest.json"))
    data = dict(
        base, action="reviewed", review={"content": "@auto-review hi"}, sender={"login": "bob"}
    )
    b = payload(data)
    async with _client(app) as client:
        r = await client.post(
            "/webhooks/forgejo",
            content=b,
            headers=hook_headers("pull_request_comment", b, delivery="d-9"),
        )
    assert r.status_code == 502
    assert not gw.dedup.seen("d-9")  # not accepted, so a redelivery will be processed


async def test_ci_mode_pending_status_failure_still_accepts(tmp_path: Path) -> None:
    host = MemoryHost(status_failures=1)
    host.add(pr("gordon/hello-world", head=SHA_A))
    app, gw, _, _ = build(tmp_path, host=host)
    body = recorded("HookPullRequest.json")
    async with _client(app) as client:
        r = await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    assert r.status_code == 202
    assert len(gw.tracker.open_prs()) == 1


@pytest.mark.parametrize(
    ("fixture", "queued", "tracked_open"),
    [
        ("HookPullRequest.json", 1, True),  # opened
        ("HookPullRequestReopened.json", 1, True),
        ("HookPullRequestUpdated.json", 1, True),  # synchronized
        ("HookPullRequestEdited.json", 0, True),  # edits change no code
        ("HookPullRequestLabelAdded.json", 0, True),
        ("HookPullRequestClosed.json", 0, False),
        ("HookPullRequestMerged.json", 0, False),
    ],
)
async def test_webhook_recorded_pull_request_actions_in_direct_mode(
    tmp_path: Path, fixture: str, queued: int, tracked_open: bool
) -> None:
    app, gw, _, _ = build(tmp_path, env={"AR_REVIEW_MODE": "direct"})
    body = recorded(fixture)
    async with _client(app) as client:
        r = await client.post(
            "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
        )
    assert r.status_code == 202
    assert len(gw.queue.list_jobs(states=[JobState.QUEUED])) == queued
    data = json.loads(body)
    owner, name = data["repository"]["full_name"].split("/")
    tracked = gw.tracker.get(RepoRef(owner, name), data["number"])
    assert tracked is not None
    assert tracked.is_open is tracked_open

"""POST /reviews/ci: bearer auth, validation before any forge call, re-fetch, coalescing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.unit.gateway.support import CI_TOKEN, SHA_A, SHA_B, MemoryHost, build, pr

from auto_review.errors import HostUnavailable
from auto_review.jobs import JobState

pytestmark = pytest.mark.anyio

_AUTH = {"Authorization": f"Bearer {CI_TOKEN}"}


def _client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


def _body(**over: object) -> dict[str, object]:
    data: dict[str, object] = {"owner": "alice", "repo": "demo", "pr_number": 1, "head_sha": SHA_A}
    data.update(over)
    return data


def _host(**kw: object) -> MemoryHost:
    host = MemoryHost()
    host.add(pr(**kw))  # type: ignore[arg-type]
    return host


async def test_ci_review_queues_one_job_and_coalesces_identical_requests(tmp_path: Path) -> None:
    app, gw, _, _ = build(tmp_path, host=_host())
    async with _client(app) as client:
        first = await client.post("/reviews/ci", json=_body(), headers=_AUTH)
        second = await client.post("/reviews/ci", json=_body(force=True), headers=_AUTH)
    assert first.status_code == 202
    assert second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    [job] = gw.queue.list_jobs()
    assert (job.state, job.force, job.trigger.value) == (JobState.QUEUED, True, "ci")
    assert gw.tracker.get(job.repo, 1) is not None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"token {CI_TOKEN}"},
        {"Authorization": CI_TOKEN},
    ],
)
async def test_ci_review_refuses_missing_or_wrong_token_without_forge_call(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    app, _gw, host, _ = build(tmp_path, host=_host())
    async with _client(app) as client:
        r = await client.post("/reviews/ci", json=_body(), headers=headers)
    assert (r.status_code, r.text) == (401, "unauthorized")
    assert host.calls == []
    assert CI_TOKEN not in r.text


async def test_ci_review_is_404_when_no_token_is_configured(tmp_path: Path) -> None:
    app, _, _, _ = build(tmp_path, host=_host(), env={"AR_CI_REVIEW_TOKEN": ""})
    async with _client(app) as client:
        r = await client.post("/reviews/ci", json=_body(), headers=_AUTH)
    assert r.status_code == 404


@pytest.mark.parametrize(
    "over",
    [
        {"owner": "../etc"},
        {"repo": "a/b"},
        {"repo": ".."},
        {"repo": "x?y"},
        {"owner": "a#b"},
        {"pr_number": 0},
        {"pr_number": "1"},
        {"head_sha": "--upload-pack=x"},
        {"force": "yes"},
    ],
)
async def test_ci_review_validates_fields_before_any_forge_call(
    tmp_path: Path, over: dict[str, object]
) -> None:
    app, _, host, _ = build(tmp_path, host=_host())
    async with _client(app) as client:
        r = await client.post("/reviews/ci", json=_body(**over), headers=_AUTH)
        bad_json = await client.post("/reviews/ci", content=b"{nope", headers=_AUTH)
        deep = b"[" * 5_000 + b"]" * 5_000  # deeper than the JSON parser goes
        too_deep = await client.post("/reviews/ci", content=deep, headers=_AUTH)
    assert r.status_code == 400
    assert bad_json.status_code == 400
    assert too_deep.status_code == 400
    assert host.calls == []


async def test_ci_review_upstream_failure_is_502_without_upstream_text(tmp_path: Path) -> None:
    host = _host()
    host.fail_with = HostUnavailable("secret upstream body <html>", status=503)
    app, _, _, _ = build(tmp_path, host=host)
    async with _client(app) as client:
        r = await client.post("/reviews/ci", json=_body(), headers=_AUTH)
    assert (r.status_code, r.text) == (502, "fetch pull request failed")


async def test_ci_review_refuses_stale_head_and_unreviewable_prs(tmp_path: Path) -> None:
    host = _host()
    host.add(pr(number=2, draft=True))
    host.add(pr(number=3, state="closed"))
    app, gw, _, _ = build(tmp_path, host=host)
    async with _client(app) as client:
        stale = await client.post("/reviews/ci", json=_body(head_sha=SHA_B), headers=_AUTH)
        draft = await client.post("/reviews/ci", json=_body(pr_number=2), headers=_AUTH)
        closed = await client.post("/reviews/ci", json=_body(pr_number=3), headers=_AUTH)
        missing = await client.post("/reviews/ci", json=_body(pr_number=4), headers=_AUTH)
    assert (stale.status_code, stale.text) == (409, "stale head_sha")
    assert (draft.status_code, closed.status_code) == (409, 409)
    assert missing.status_code == 502
    assert gw.queue.list_jobs() == []


async def test_ci_review_for_new_head_supersedes_the_queued_older_one(tmp_path: Path) -> None:
    host = _host()
    app, gw, _, _ = build(tmp_path, host=host)
    async with _client(app) as client:
        first = (await client.post("/reviews/ci", json=_body(), headers=_AUTH)).json()
        host.move_head("alice/demo", 1, SHA_B)
        second = (
            await client.post("/reviews/ci", json=_body(head_sha=SHA_B), headers=_AUTH)
        ).json()
    assert first["job_id"] != second["job_id"]
    states = {j.id: j.state for j in gw.queue.list_jobs()}
    assert states == {first["job_id"]: JobState.SUPERSEDED, second["job_id"]: JobState.QUEUED}


async def test_ci_review_body_json_reply_has_job_id(tmp_path: Path) -> None:
    app, _, _, _ = build(tmp_path, host=_host())
    async with _client(app) as client:
        r = await client.post("/reviews/ci", content=json.dumps(_body()), headers=_AUTH)
    assert isinstance(r.json()["job_id"], int)


async def test_ci_review_store_failure_is_503_with_a_fixed_body(tmp_path: Path) -> None:
    # A full or read-only state directory: the request must be answered (CI retries a 503) and
    # logged, not escape as an unhandled exception with a 500 the endpoint never documented.
    from auto_review.errors import StoreError

    app, gw, _, _ = build(tmp_path, host=_host())

    def full(*_args: object, **_kw: object) -> object:
        raise StoreError("database or disk is full")

    gw.queue.enqueue_review = full  # type: ignore[method-assign]
    async with _client(app) as client:
        answer = await client.post("/reviews/ci", json=_body(), headers=_AUTH)
    assert answer.status_code == 503
    assert answer.text == "cannot accept now; retry later"

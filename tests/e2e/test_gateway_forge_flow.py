"""Real payloads end to end: the fake forge's webhooks into a gateway process and back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
from tests.e2e.gateway_process import CI_TOKEN, SECRET, GatewayProcess, wait_until
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES, DEMO_HEAD_FILES
from tests.fakes.forge_state import PullRecord
from tests.fakes.forge_webhooks import webhook_headers
from tests.fakes.llm import ScriptedModel, reply
from tests.fakes.llm_script import SCRIPTED_API_KEY

from auto_review.settings import LLMConfig

pytestmark = pytest.mark.slow

REPO = "alice/demo"


def _statuses(forge: FakeForge, sha: str) -> list[tuple[str, str]]:
    return [(s.state, s.description) for s in forge.repo(REPO).statuses if s.sha == sha]


def _entry_gateway(forge: FakeForge, tmp_path: Path) -> GatewayProcess:
    """A gateway process with the e2e entry's scripted review (no model)."""
    return GatewayProcess(
        tmp_path / "state",
        forge_url=forge.url,
        forge_token=forge.bot_token,
        argv=(sys.executable, "-m", "tests.e2e.gateway_entry"),
        env={"E2E_HOLD_FILE": str(tmp_path / "no-hold")},
    ).start()


def _pipeline_gateway(forge: FakeForge, llm: LLMConfig, tmp_path: Path) -> GatewayProcess:
    """The real `auto-review gateway --bare` with the production pipeline and the scripted model."""
    return GatewayProcess(
        tmp_path / "state",
        forge_url=forge.url,
        forge_token=forge.bot_token,
        env={
            "LLM_BASE_URL": llm.reasoning.base_url,
            "LLM_API_KEY": SCRIPTED_API_KEY,
            "LLM_REASONING_MODEL": llm.reasoning.model,
        },
    ).start()


def _open_pull(forge: FakeForge, gateway: GatewayProcess, **repo: str) -> PullRecord:
    """alice/demo, hooked to the gateway, with alice's PR from ``feature`` open."""
    forge.create_repo(REPO, DEMO_BASE_FILES, **repo)
    forge.add_hook(REPO, f"{gateway.url}/webhooks/forgejo", secret=SECRET)
    forge.push(REPO, "feature", DEMO_HEAD_FILES, message="change")
    return forge.open_pull(REPO, head="feature", title="Fix", author="alice")


def test_gateway_ci_mode_flow_from_pr_webhooks_to_final_status(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
    gateway = _entry_gateway(fake_forge, tmp_path)
    try:
        pull = _open_pull(fake_forge, gateway)
        first = fake_forge.state.head_sha(fake_forge.repo(REPO), pull)
        assert fake_forge.deliveries[-1].status == 202
        # ci mode: the opened PR only gets a "waiting for CI" status, no review job.
        assert _statuses(fake_forge, first) == [("pending", "waiting for CI to request a review")]
        assert gateway.jobs() == []

        fake_forge.push(REPO, "feature", {"src/new.py": "VALUE = 2\n"}, message="more")
        second = fake_forge.state.head_sha(fake_forge.repo(REPO), pull)
        assert fake_forge.deliveries[-1].status == 202  # synchronized

        headers = {"Authorization": f"Bearer {CI_TOKEN}"}
        body = {"owner": "alice", "repo": "demo", "pr_number": pull.number, "head_sha": first}
        stale = httpx.post(f"{gateway.url}/reviews/ci", json=body, headers=headers, timeout=10)
        assert (stale.status_code, stale.text) == (409, "stale head_sha")
        body["head_sha"] = second
        queued = httpx.post(f"{gateway.url}/reviews/ci", json=body, headers=headers, timeout=10)
        assert queued.status_code == 202
        wait_until(
            lambda: _statuses(fake_forge, second)[-1:] == [("success", "no findings")],
            what="final status",
        )
        wait_until(lambda: [j["state"] for j in gateway.jobs()] == ["done"], what="job done")
        [job] = gateway.jobs()
        assert (job["head_sha"], job["trigger"]) == (second, "ci")

        fake_forge.close_pull(REPO, pull.number)
        assert fake_forge.deliveries[-1].status == 202
        info = httpx.get(f"{gateway.url}/info", timeout=10).json()
        assert info["poller"]["tracked_prs"] == {"total": 1, "open": 0}
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        for secret in (SECRET, CI_TOKEN, fake_forge.bot_token):
            assert secret not in metrics
        # The pipeline's metrics are the ones served: the one review's refused clone counted.
        refused = 'auto_review_clone_egress_refusals_total{reason="destination_not_allowed"}'
        assert f"{refused} 1.0" in metrics.splitlines()
    finally:
        gateway.stop()


def test_gateway_reviews_a_pr_whose_author_requests_the_bots_review(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
    """CI mode waits for CI, but a writer requesting the bot's review on the forge is an
    explicit ask: Forgejo's review_requested delivery queues a review of the head, which runs
    and reports. A request to someone else, or by a user without write access, does nothing."""
    gateway = _entry_gateway(fake_forge, tmp_path)
    try:
        # The bot reads the requester's access: Forgejo tells only repo admins.
        pull = _open_pull(fake_forge, gateway, bot_permission="admin")
        head = fake_forge.state.head_sha(fake_forge.repo(REPO), pull)
        assert gateway.jobs() == []  # ci mode: waiting for CI

        [other] = fake_forge.request_review(REPO, pull.number, "carol", by="alice")
        [reader] = fake_forge.request_review(REPO, pull.number, fake_forge.bot.login, by="carol")
        assert (other.status, reader.status, gateway.jobs()) == (202, 202, [])
        [asked] = fake_forge.request_review(REPO, pull.number, fake_forge.bot.login, by="alice")
        assert asked.headers["X-Forgejo-Event"] == "pull_request"
        assert asked.status == 202
        wait_until(
            lambda: _statuses(fake_forge, head)[-1:] == [("success", "no findings")],
            what="final status",
        )
        wait_until(lambda: [j["state"] for j in gateway.jobs()] == ["done"], what="job done")
        [job] = gateway.jobs()
        assert (job["head_sha"], job["trigger"]) == (head, "review_request")
    finally:
        gateway.stop()


def test_gateway_forces_one_review_for_a_review_request_body_replayed_under_new_ids(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
    """Forgejo signs the body only: a captured review_requested re-sent under fresh delivery ids
    (to either route) is answered as a duplicate, not reviewed again each time (REDTEAM F66).
    A second real request is a new body and forces a second review."""
    gateway = _entry_gateway(fake_forge, tmp_path)
    try:
        pull = _open_pull(fake_forge, gateway, bot_permission="admin")
        [asked] = fake_forge.request_review(REPO, pull.number, fake_forge.bot.login, by="alice")
        assert asked.status == 202
        wait_until(lambda: [j["state"] for j in gateway.jobs()] == ["done"], what="review done")
        answers = []
        for n in range(4):  # with the forge's own delivery, one body under five ids
            route = "forgejo" if n % 2 else "gitea"
            headers = webhook_headers(asked.event_type, asked.body, SECRET)  # a fresh id
            r = httpx.post(
                f"{gateway.url}/webhooks/{route}", content=asked.body, headers=headers, timeout=10
            )
            answers.append((r.status_code, r.text))
        assert answers == [(200, "duplicate")] * 4
        assert len(gateway.jobs()) == 1  # enqueueing happens before the answer: nothing late

        [again] = fake_forge.request_review(REPO, pull.number, fake_forge.bot.login, by="alice")
        assert (again.status, again.body != asked.body) == (202, True)
        wait_until(
            lambda: [j["state"] for j in gateway.jobs()] == ["done", "done"], what="second review"
        )
        assert [j["trigger"] for j in gateway.jobs()] == ["review_request"] * 2
    finally:
        gateway.stop()


def test_gateway_command_runs_the_real_pipeline_from_a_ci_request(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> None:
    answer = {"summary": "Changes sub.", "walkthrough": "- src/app.py", "findings": []}
    scripted_model.respond_with(lambda request: reply(json.dumps(answer)))
    gateway = _pipeline_gateway(fake_forge, scripted_llm_config, tmp_path)
    try:
        head = fake_forge.state.head_sha(fake_forge.repo(REPO), forge_repo)
        gateway.review_via_ci(forge_repo.number, head, limit_secs=120)
        assert len(fake_forge.repo(REPO).reviews) == 1
        assert _statuses(fake_forge, head)[-1][0] == "success"
        ready = httpx.get(f"{gateway.url}/readyz", timeout=10).json()
        assert ready["checks"] == {"forge": "ok", "model": "ok"}
    finally:
        gateway.stop()


def _review_and_wait(gateway: GatewayProcess, number: int, head: str, jobs: int) -> None:
    """Ask ``/reviews/ci`` for a review of ``head`` and wait until it is job ``jobs``, posted."""
    body = {"owner": "alice", "repo": "demo", "pr_number": number, "head_sha": head}
    headers = {"Authorization": f"Bearer {CI_TOKEN}"}
    queued = httpx.post(f"{gateway.url}/reviews/ci", json=body, headers=headers, timeout=10)
    assert queued.status_code == 202, queued.text
    wait_until(
        lambda: len(gateway.jobs()) == jobs and gateway.jobs()[-1]["state"] in ("done", "failed"),
        limit_secs=120,
        what="the review job to end",
    )
    job = gateway.jobs()[-1]
    assert (job["state"], job["result"], job["head_sha"]) == ("done", "posted", head), job


def test_gateway_reviews_only_the_new_commits_of_a_private_repository(
    fake_forge: FakeForge,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> None:
    """The second review of a PR on a PRIVATE repository covers only what was pushed since the
    first: the forge's compare page is anonymous (404 here), the clone's git diff is not."""
    answer = {"summary": "Changes.", "walkthrough": "- files", "findings": []}
    scripted_model.respond_with(lambda request: reply(json.dumps(answer)))
    fake_forge.create_repo(REPO, DEMO_BASE_FILES, private=True)  # the bot may write
    fake_forge.push(REPO, "feature", DEMO_HEAD_FILES, message="change")
    pull = fake_forge.open_pull(REPO, head="feature", title="Fix", author="alice")
    gateway = _pipeline_gateway(fake_forge, scripted_llm_config, tmp_path)

    def reviewed_files() -> list[str]:
        [prompt] = [r.text() for r in scripted_model.chat_requests[seen:]]
        return sorted(p for p in ("src/app.py", "src/new.py", "src/later.py") if f"'{p}'" in prompt)

    try:
        seen = 0
        first = fake_forge.state.head_sha(fake_forge.repo(REPO), pull)
        _review_and_wait(gateway, pull.number, first, jobs=1)
        assert reviewed_files() == ["src/app.py", "src/new.py"]  # the whole PR, first time
        seen = len(scripted_model.chat_requests)
        second = fake_forge.push(REPO, "feature", {"src/later.py": "LATER = 3\n"}, message="more")
        _review_and_wait(gateway, pull.number, second, jobs=2)
        assert reviewed_files() == ["src/later.py"]  # only the new commit
        assert len(fake_forge.repo(REPO).reviews) == 2
        assert _statuses(fake_forge, second)[-1][0] == "success"
    finally:
        gateway.stop()

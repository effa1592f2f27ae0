"""The gateway as a real process against the fake forge: webhooks end to end, kill -9, restart."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from tests.e2e.gateway_process import CI_TOKEN, SECRET, GatewayProcess, wait_until
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES, DEMO_HEAD_FILES
from tests.fakes.forge_state import PullRecord

pytestmark = pytest.mark.slow

REPO = "alice/demo"


def _bot_comments(forge: FakeForge) -> list[str]:
    return [c.body for c in forge.repo(REPO).issue_comments if c.user == forge.bot.login]


def _statuses(forge: FakeForge, sha: str) -> list[tuple[str, str]]:
    return [(s.state, s.description) for s in forge.repo(REPO).statuses if s.sha == sha]


def test_gateway_chat_job_interrupted_by_sigkill_is_finished_after_restart(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    gateway = GatewayProcess(
        tmp_path / "state", forge_url=fake_forge.url, forge_token=fake_forge.bot_token
    ).start()
    try:
        fake_forge.add_hook(REPO, f"{gateway.url}/webhooks/forgejo", secret=SECRET)
        # The chat handler's read of the PR hangs, so the job is mid-flight when we kill.
        fake_forge.hang("/repos/{owner}/{repo}/pulls/{index}", method="GET")
        fake_forge.comment(REPO, forge_repo.number, "@auto-review help", author="alice")
        assert fake_forge.deliveries[-1].status == 202
        wait_until(lambda: [j["state"] for j in gateway.jobs()] == ["running"], what="running")
        # The fault is used up once the hung request reached the forge: the job is mid-call.
        wait_until(lambda: all(f.times == 0 for f in fake_forge._faults), what="hung call")
        gateway.kill()
        assert _bot_comments(fake_forge) == []

        gateway.start()  # same state directory: the interrupted job is recovered and retried
        wait_until(lambda: len(_bot_comments(fake_forge)) == 1, what="the help reply")
        wait_until(lambda: [j["state"] for j in gateway.jobs()] == ["done"], what="done")
        [job] = gateway.jobs()
        assert job["attempts"] == 2
        assert gateway.terminate() == 0  # SIGTERM: graceful stop, clean exit
    finally:
        gateway.stop()


def _review_gateway(fake: FakeForge, tmp_path: Path, attempts: int) -> GatewayProcess:
    hold = tmp_path / "hold"
    hold.touch()
    return GatewayProcess(
        tmp_path / "state",
        forge_url=fake.url,
        forge_token=fake.bot_token,
        argv=(sys.executable, "-m", "tests.e2e.gateway_entry"),
        env={"E2E_HOLD_FILE": str(hold), "AR_JOB_MAX_ATTEMPTS": str(attempts)},
    )


def _head(forge: FakeForge, pull: PullRecord) -> str:
    return forge.state.head_sha(forge.repo(REPO), pull)


def _request_review(gateway: GatewayProcess, head: str, pull: PullRecord) -> int:
    body = {"owner": "alice", "repo": "demo", "pr_number": pull.number, "head_sha": head}
    headers = {"Authorization": f"Bearer {CI_TOKEN}"}
    first = httpx.post(f"{gateway.url}/reviews/ci", json=body, headers=headers, timeout=10)
    again = httpx.post(f"{gateway.url}/reviews/ci", json=body, headers=headers, timeout=10)
    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]  # coalesced
    return int(first.json()["job_id"])


def test_gateway_review_killed_mid_run_is_retried_and_finished_after_restart(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    gateway = _review_gateway(fake_forge, tmp_path, attempts=3).start()
    try:
        head = _head(fake_forge, forge_repo)
        _request_review(gateway, head, forge_repo)
        wait_until(
            lambda: _statuses(fake_forge, head) == [("pending", "auto-review running")],
            what="pending status",
        )
        gateway.kill()
        (tmp_path / "hold").unlink()
        gateway.start()
        wait_until(lambda: _statuses(fake_forge, head)[-1][0] == "success", what="success status")
        wait_until(lambda: [j["state"] for j in gateway.jobs()] == ["done"], what="done")
    finally:
        gateway.stop()


def test_gateway_review_killed_with_no_attempts_left_ends_with_error_status(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    gateway = _review_gateway(fake_forge, tmp_path, attempts=1).start()
    try:
        head = _head(fake_forge, forge_repo)
        _request_review(gateway, head, forge_repo)
        wait_until(lambda: len(_statuses(fake_forge, head)) == 1, what="pending")
        gateway.kill()
        gateway.start()
        wait_until(lambda: _statuses(fake_forge, head)[-1][0] == "error", what="error status")
        _, description = _statuses(fake_forge, head)[-1]
        assert "interrupted" in description  # the status says why
        [job] = gateway.jobs()
        assert (job["state"], job["status_owed"]) == ("failed", 0)
    finally:
        gateway.stop()


def _direct_gateway(fake: FakeForge, tmp_path: Path) -> GatewayProcess:
    """Direct mode, the entry's scripted review, a poll every second."""
    return GatewayProcess(
        tmp_path / "state",
        forge_url=fake.url,
        forge_token=fake.bot_token,
        argv=(sys.executable, "-m", "tests.e2e.gateway_entry"),
        env={
            "E2E_HOLD_FILE": str(tmp_path / "no-hold"),
            "AR_REVIEW_MODE": "direct",
            "AR_POLL_INTERVAL_SECS": "1",
        },
    )


def _reviewed(gateway: GatewayProcess, head: str) -> list[object]:
    jobs = gateway.jobs()
    return [j["state"] for j in jobs if j["kind"] == "review" and j["head_sha"] == head]


def _cycles(gateway: GatewayProcess) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    lines = [x for x in text.splitlines() if x.startswith("auto_review_poller_cycles_total ")]
    return float(lines[0].split()[1]) if lines else 0.0


def _open_reviewed_pull(fake: FakeForge, gateway: GatewayProcess) -> PullRecord:
    fake.create_repo(REPO, DEMO_BASE_FILES)
    fake.add_hook(REPO, f"{gateway.url}/webhooks/forgejo", secret=SECRET)
    fake.push(REPO, "feature", DEMO_HEAD_FILES, message="change")
    pull = fake.open_pull(REPO, head="feature", title="Fix", author="alice")
    wait_until(lambda: _reviewed(gateway, _head(fake, pull)) == ["done"], what="first review")
    return pull


def test_gateway_reviews_a_push_made_while_it_was_down_after_restart(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
    # REDTEAM F88: a push whose webhook never arrived was not reviewed until the next event.
    gateway = _direct_gateway(fake_forge, tmp_path).start()
    try:
        pull = _open_reviewed_pull(fake_forge, gateway)
        assert gateway.terminate() == 0
        fake_forge.push(REPO, "feature", {"src/new.py": "VALUE = 2\n"}, message="more")
        assert fake_forge.deliveries[-1].status == 0  # the synchronized webhook was lost
        head = _head(fake_forge, pull)
        gateway.start()
        wait_until(lambda: _reviewed(gateway, head) == ["done"], limit_secs=15, what="catch-up")
        assert _statuses(fake_forge, head) == [
            ("pending", "auto-review running"),
            ("success", "no findings"),
        ]
    finally:
        gateway.stop()


def test_gateway_push_whose_webhook_arrived_is_reviewed_once_across_a_restart(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
    gateway = _direct_gateway(fake_forge, tmp_path).start()
    try:
        pull = _open_reviewed_pull(fake_forge, gateway)
        fake_forge.push(REPO, "feature", {"src/new.py": "VALUE = 2\n"}, message="more")
        assert fake_forge.deliveries[-1].status == 202
        head = _head(fake_forge, pull)
        wait_until(lambda: _reviewed(gateway, head) == ["done"], what="the push's review")
        assert gateway.terminate() == 0
        gateway.start()  # the first poll after a start re-reads the PR: its head is known
        wait_until(lambda: _cycles(gateway) >= 2, what="two poll cycles")
        assert _reviewed(gateway, head) == ["done"]
        assert len(_statuses(fake_forge, head)) == 2
    finally:
        gateway.stop()

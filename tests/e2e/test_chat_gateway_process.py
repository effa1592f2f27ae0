"""Chat gaps through the gateway as a real process against the fake forge: a command deleted
before its job ran, and the limits of the commands that spend no model budget."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.e2e.gateway_process import SECRET, GatewayProcess, wait_until
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord

pytestmark = pytest.mark.slow

REPO = "alice/demo"


def _bot_comments(forge: FakeForge) -> list[str]:
    return [c.body for c in forge.repo(REPO).issue_comments if c.user == forge.bot.login]


def _states(gateway: GatewayProcess) -> list[object]:
    return [j["state"] for j in gateway.jobs()]


def test_gateway_does_not_answer_a_command_deleted_before_its_job_ran(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    gateway = GatewayProcess(
        tmp_path / "state", forge_url=fake_forge.url, forge_token=fake_forge.bot_token
    ).start()
    try:
        fake_forge.add_hook(REPO, f"{gateway.url}/webhooks/forgejo", secret=SECRET)
        # The job's first forge call, reading the comment again, hangs: the delivery was
        # accepted and its job taken, nothing spent or posted yet, when the gateway dies.
        fake_forge.hang("/repos/{owner}/{repo}/issues/comments/{id}", method="GET")
        comment = fake_forge.comment(REPO, forge_repo.number, "@auto-review help", author="bob")
        assert fake_forge.deliveries[-1].status == 202
        wait_until(lambda: _states(gateway) == ["running"], what="running")
        wait_until(lambda: all(f.times == 0 for f in fake_forge._faults), what="hung call")
        gateway.kill()
        deleted = httpx.delete(
            f"{fake_forge.api_url}/repos/{REPO}/issues/comments/{comment.id}",
            headers={"Authorization": f"token {fake_forge.token_for('bob')}"},
            timeout=10,
        )
        assert deleted.status_code == 204

        gateway.start()  # the interrupted job is retried: the comment is gone by now
        wait_until(lambda: _states(gateway) == ["done"], what="done")
        [job] = gateway.jobs()
        assert (job["result"], job["reason"]) == (
            "skipped",
            "the comment was deleted before it was answered",
        )
        assert _bot_comments(fake_forge) == []
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        assert 'auto_review_jobs_finished_total{kind="chat",result="skipped"} 1.0' in metrics
        assert gateway.terminate() == 0
    finally:
        gateway.stop()


def test_gateway_refuses_free_commands_past_their_per_user_limit(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    gateway = GatewayProcess(
        tmp_path / "state",
        forge_url=fake_forge.url,
        forge_token=fake_forge.bot_token,
        env={"AR_CHAT_FREE_USER_RATE_PER_HOUR": "2"},
    ).start()
    try:
        fake_forge.add_hook(REPO, f"{gateway.url}/webhooks/forgejo", secret=SECRET)
        for sent in range(1, 5):
            fake_forge.comment(REPO, forge_repo.number, "@auto-review help", author="bob")
            assert fake_forge.deliveries[-1].status == 202
            wait_until(lambda n=sent: _states(gateway) == ["done"] * n, what=f"job {sent}")
        texts = _bot_comments(fake_forge)
        # Two answers, the third refused with a notice, the fourth silently (one notice an hour).
        assert len(texts) == 3
        assert all("@auto-review review" in text for text in texts[:2])
        assert "2 `help`, `config` and `learnings` commands per user per hour" in texts[2]
        assert "@auto-review review" not in texts[2]
    finally:
        gateway.stop()

"""The default `auto-review gateway` (full isolation tier) against the fake forge."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.e2e.gateway_process import AUTO_REVIEW, SECRET, GatewayProcess
from tests.e2e.gateway_python import assert_reasons_match_sandbox_check
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES, DEMO_HEAD_FILES
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel, reply
from tests.fakes.llm_script import SCRIPTED_API_KEY

from auto_review.sandbox import Tier, probe_host
from auto_review.settings import LLMConfig

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

REPO = "alice/demo"


def _require_full_tier() -> None:
    support = probe_host()
    if support.best_tier is not Tier.FULL:
        missing = [
            name
            for name, feature in (
                ("user namespaces", support.user_namespaces),
                ("seccomp", support.seccomp),
            )
            if not feature.available
        ]
        pytest.skip(f"full isolation tier unavailable here: missing {', '.join(missing)}")


def test_sandboxed_gateway_handles_webhooks_and_reports_its_posture(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
    _require_full_tier()
    gateway = GatewayProcess(
        tmp_path / "state",
        forge_url=fake_forge.url,
        forge_token=fake_forge.bot_token,
        argv=(str(AUTO_REVIEW), "gateway"),
        env={"AR_ISOLATION": "full"},
    ).start()
    try:
        info = httpx.get(f"{gateway.url}/info", timeout=10).json()
        assert info["isolation"]["tier"] == "full"
        assert info["isolation"]["controls"]["seccomp"] == "on"
        assert info["isolation"]["controls"]["clone_egress"] == "on"  # forge-only, proxied
        assert_reasons_match_sandbox_check(info["isolation"], Tier.FULL)
        forge = httpx.URL(fake_forge.url)
        clone = info["isolation"]["reasons"]["clone_egress"]
        assert f"proxied to {forge.host}:{forge.port} only" in clone, clone
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        assert 'auto_review_isolation_control{control="seccomp",state="on"} 1.0' in metrics
        assert SECRET not in metrics
        [started] = [
            json.loads(line)
            for line in gateway.log.read_text().splitlines()
            if '"gateway_listening"' in line
        ]
        assert started["isolation_tier"] == "full"
        assert started["isolation_controls"]["seccomp"] == "on"
        fake_forge.create_repo(REPO, DEMO_BASE_FILES)
        fake_forge.add_hook(REPO, f"{gateway.url}/webhooks/forgejo", secret=SECRET)
        fake_forge.push(REPO, "feature", DEMO_HEAD_FILES, message="change")
        pull = fake_forge.open_pull(REPO, head="feature", author="alice")
        assert fake_forge.deliveries[-1].status == 202
        head = fake_forge.state.head_sha(fake_forge.repo(REPO), pull)
        statuses = [(s.sha, s.state) for s in fake_forge.repo(REPO).statuses]
        assert statuses == [(head, "pending")]  # set from inside the sandbox
        assert gateway.terminate() == 0
    finally:
        gateway.stop()


def test_sandboxed_gateway_reviews_a_pr_cloned_through_the_egress_proxy(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> None:
    """The full tier end to end: the confined gateway asks its job server for the clone, which
    runs git in an empty network namespace reaching the fake forge only through the job
    server's egress proxy; the review is posted."""
    _require_full_tier()
    answer = {"summary": "Changes sub.", "walkthrough": "- src/app.py", "findings": []}
    scripted_model.respond_with(lambda request: reply(json.dumps(answer)))
    gateway = GatewayProcess(
        tmp_path / "state",
        forge_url=fake_forge.url,
        forge_token=fake_forge.bot_token,
        argv=(str(AUTO_REVIEW), "gateway"),
        env={
            "AR_ISOLATION": "full",
            "LLM_BASE_URL": scripted_llm_config.reasoning.base_url,
            "LLM_API_KEY": SCRIPTED_API_KEY,
            "LLM_REASONING_MODEL": scripted_llm_config.reasoning.model,
        },
    ).start()
    try:
        head = fake_forge.state.head_sha(fake_forge.repo(REPO), forge_repo)
        gateway.review_via_ci(forge_repo.number, head, limit_secs=180)
        assert len(fake_forge.repo(REPO).reviews) == 1
        fetches = [c for c in fake_forge.calls if c.path.endswith("/git-upload-pack")]
        assert fetches, "the review did not fetch from the forge"
        assert all(c.status == 200 for c in fetches)
        assert gateway.terminate() == 0
    finally:
        gateway.stop()


def test_sandboxed_gateway_wants_the_operator_token_handed_over_by_the_launcher(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
    """AR_OPERATOR_TOKEN crosses the sandbox boundary on the launcher's pipe like every secret:
    the confined gateway refuses /info and /metrics without it and answers them with it."""
    _require_full_tier()
    token = "operator-" + "e2e" * 12
    gateway = GatewayProcess(
        tmp_path / "state",
        forge_url=fake_forge.url,
        forge_token=fake_forge.bot_token,
        argv=(str(AUTO_REVIEW), "gateway"),
        env={"AR_ISOLATION": "full", "AR_OPERATOR_TOKEN": token},
    ).start()
    try:
        bearer = {"Authorization": f"Bearer {token}"}
        for path in ("/info", "/metrics"):
            refused = httpx.get(f"{gateway.url}{path}", timeout=10)
            assert (refused.status_code, refused.text) == (401, "unauthorized"), path
            assert refused.headers["www-authenticate"] == "Bearer"
            wrong = {"Authorization": f"Bearer {token[:-1]}x"}
            assert httpx.get(f"{gateway.url}{path}", headers=wrong, timeout=10).status_code == 401
            assert httpx.get(f"{gateway.url}{path}", headers=bearer, timeout=10).status_code == 200
        info = httpx.get(f"{gateway.url}/info", headers=bearer, timeout=10).json()
        assert info["isolation"]["tier"] == "full"  # answered from inside the sandbox
        assert httpx.get(f"{gateway.url}/version", timeout=10).status_code == 200
        assert httpx.get(f"{gateway.url}/readyz", timeout=10).status_code in {200, 503}
        assert gateway.terminate() == 0
        log = gateway.log.read_text()
        assert '"operator_unauthorized"' in log  # positive control: the refusals were logged
        assert token not in log
        assert "operator_endpoints_unauthenticated" not in log  # loopback bind, token set
    finally:
        gateway.stop()

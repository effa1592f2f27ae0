"""The default `auto-review gateway` (full isolation tier) against the fake forge."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.e2e.gateway_process import AUTO_REVIEW, SECRET, GatewayProcess
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES, DEMO_HEAD_FILES

from auto_review.sandbox import Tier, probe_host

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

REPO = "alice/demo"


def test_sandboxed_gateway_handles_webhooks_and_reports_its_posture(
    fake_forge: FakeForge, tmp_path: Path
) -> None:
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

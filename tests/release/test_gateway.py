"""The built executable runs the gateway (full tier, and bare) and posts a CI-triggered review."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from auto_review.settings import LLMConfig
from tests.e2e.gateway_process import GatewayProcess
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel, reply
from tests.fakes.llm_script import SCRIPTED_API_KEY

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

REPO = "alice/demo"
NO_LAUNCHER = "this build has no sandbox launcher"


@dataclass(frozen=True)
class _Scene:
    forge: FakeForge
    pull: PullRecord
    model: ScriptedModel
    llm: LLMConfig
    state_dir: Path


@pytest.fixture
def scene(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> _Scene:
    """The fake forge with one open PR and a scripted model that finds nothing."""
    answer = {"summary": "Changes sub.", "walkthrough": "- src/app.py", "findings": []}
    scripted_model.respond_with(lambda request: reply(json.dumps(answer)))
    return _Scene(fake_forge, forge_repo, scripted_model, scripted_llm_config, tmp_path / "state")


def _review_end_to_end(binary: Path, scene: _Scene, *, argv: tuple[str, ...], tier: str) -> None:
    gateway = GatewayProcess(
        scene.state_dir,
        forge_url=scene.forge.url,
        forge_token=scene.forge.bot_token,
        argv=(str(binary), *argv),
        env={
            "LLM_BASE_URL": scene.llm.reasoning.base_url,
            "LLM_API_KEY": SCRIPTED_API_KEY,
            "LLM_REASONING_MODEL": scene.llm.reasoning.model,
            "AR_ISOLATION": tier,
            "PYTHONPATH": "",
        },
    )
    try:
        gateway.start()
    except RuntimeError as exc:
        if NO_LAUNCHER in str(exc):
            pytest.skip(f"the gateway cannot run sandboxed yet: {NO_LAUNCHER}")
        raise
    try:
        assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
        info = httpx.get(f"{gateway.url}/info", timeout=10)
        assert info.status_code == 200, info.text
        assert tier in info.text
        head = scene.forge.state.head_sha(scene.forge.repo(REPO), scene.pull)
        gateway.review_via_ci(scene.pull.number, head, limit_secs=180)
        assert len(scene.forge.repo(REPO).reviews) == 1
        statuses = [s.state for s in scene.forge.repo(REPO).statuses if s.sha == head]
        assert statuses[-1] == "success"
    finally:
        _stop(gateway)


def _stop(gateway: GatewayProcess) -> None:
    # SIGTERM, which the bootloader forwards, so it also removes its unpacked directory; SIGKILL
    # (stop) only when that fails.
    try:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.terminate(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        gateway.stop()


def test_release_gateway_in_full_tier_posts_a_ci_triggered_review(
    release_binary: Path, scene: _Scene
) -> None:
    _review_end_to_end(release_binary, scene, argv=("gateway",), tier="full")


def test_release_gateway_bare_posts_a_ci_triggered_review(
    release_binary: Path, scene: _Scene
) -> None:
    """Without isolation the built file still clones with the host's git and posts the review."""
    _review_end_to_end(release_binary, scene, argv=("gateway", "--bare"), tier="none")

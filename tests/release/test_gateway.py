"""The built executable runs the gateway (full tier, and bare) and posts a CI-triggered review."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.release._gateway import REPO, Scene, model_env, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


def _review_end_to_end(binary: Path, scene: Scene, *, argv: tuple[str, ...], tier: str) -> None:
    # Started as a service manager starts it: in /, with the shipped unit's UMask=0077 (a root
    # start under that umask once left the full tier's job unable to reach its own root).
    gateway = GatewayProcess(
        scene.state_dir,
        forge_url=scene.forge.url,
        forge_token=scene.forge.bot_token,
        argv=(str(binary), *argv),
        env={**model_env(scene), "AR_ISOLATION": tier},
        cwd=Path("/"),
        umask=0o077,
    )
    start(gateway)
    try:
        assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
        info = httpx.get(f"{gateway.url}/info", timeout=10)
        assert info.status_code == 200, info.text
        assert tier in info.text
        head = scene.head()
        gateway.review_via_ci(scene.pull.number, head, limit_secs=180)
        assert len(scene.forge.repo(REPO).reviews) == 1
        statuses = [s.state for s in scene.forge.repo(REPO).statuses if s.sha == head]
        assert statuses[-1] == "success"
    finally:
        stop(gateway)


def test_release_gateway_in_full_tier_posts_a_ci_triggered_review(
    release_binary: Path, scene: Scene
) -> None:
    _review_end_to_end(release_binary, scene, argv=("gateway",), tier="full")


def test_release_gateway_bare_posts_a_ci_triggered_review(
    release_binary: Path, scene: Scene
) -> None:
    """Without isolation the built file still clones with the host's git and posts the review."""
    _review_end_to_end(release_binary, scene, argv=("gateway", "--bare"), tier="none")

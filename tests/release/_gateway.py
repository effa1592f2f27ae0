"""The built gateway against the fake forge and the scripted model, shared by the gateway tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from auto_review.settings import LLMConfig
from tests.e2e.gateway_process import GatewayProcess
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel
from tests.fakes.llm_script import SCRIPTED_API_KEY

__all__ = ["REPO", "Scene", "model_env", "start", "stop"]

REPO = "alice/demo"
NO_LAUNCHER = "this build has no sandbox launcher"


@dataclass(frozen=True)
class Scene:
    forge: FakeForge
    pull: PullRecord
    model: ScriptedModel
    llm: LLMConfig
    state_dir: Path

    def head(self) -> str:
        return str(self.forge.state.head_sha(self.forge.repo(REPO), self.pull))


def model_env(scene: Scene) -> dict[str, str]:
    """The gateway's model settings, pointing at the scripted model; no PYTHONPATH, since the
    built file must not need the source tree."""
    return {
        "LLM_BASE_URL": scene.llm.reasoning.base_url,
        "LLM_API_KEY": SCRIPTED_API_KEY,
        "LLM_REASONING_MODEL": scene.llm.reasoning.model,
        "PYTHONPATH": "",
    }


def start(gateway: GatewayProcess) -> GatewayProcess:
    """Start it and wait for /healthz; a build without the launcher skips."""
    try:
        return gateway.start()
    except RuntimeError as exc:
        if NO_LAUNCHER in str(exc):
            pytest.skip(f"the gateway cannot run sandboxed yet: {NO_LAUNCHER}")
        raise


def stop(gateway: GatewayProcess) -> None:
    """SIGTERM, which the bootloader forwards, so it also removes its unpacked directory; SIGKILL
    (``GatewayProcess.stop``) only when that fails."""
    try:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.terminate(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        gateway.stop()

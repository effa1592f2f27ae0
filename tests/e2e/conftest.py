"""The review-pipeline harness as a fixture, for every e2e file that drives the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e._harness import Harness
from tests.fakes.forge import FakeForge
from tests.fakes.llm import ScriptedModel

from auto_review.settings import LLMConfig


@pytest.fixture
def harness(
    fake_forge: FakeForge,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> Harness:
    return Harness(fake_forge, scripted_model, scripted_llm_config, tmp_path)

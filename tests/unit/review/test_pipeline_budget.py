"""One review's chat requests to the model are bounded, however the model answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel, invalid_json

from auto_review.errors import LLMBudgetExhausted
from auto_review.hosts import ForgejoHost, HeadSha, RepoRef
from auto_review.llm import LLMClient
from auto_review.review import PipelineOptions, ReviewPipeline, ReviewRequest, Trigger
from auto_review.settings import LLMConfig
from auto_review.store import Store

REPO = RepoRef("alice", "demo")


def test_a_model_that_never_answers_validly_gets_at_most_the_reviews_request_budget(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> None:
    # Three files too big to share a call: three review calls, each re-asked twice on broken
    # JSON, would send 9 requests. The review's budget (here 4) ends it, and none goes past it.
    big = "".join(
        f"def f{i}(x):\n    return x + {i}  # padding padding padding\n" for i in range(900)
    )
    fake_forge.push("alice/demo", "feature", {f"src/big{n}.py": big for n in range(3)})
    scripted_model.respond_with(lambda _request: invalid_json())
    options = PipelineOptions(workspace_parent=tmp_path, report_errors=True, max_model_requests=4)

    async def run() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            host = ForgejoHost(http, base_url=fake_forge.url, token=fake_forge.bot_token)
            llm = LLMClient(scripted_llm_config, http)
            pipeline = ReviewPipeline(options, host, llm, Store.in_state_dir(tmp_path / "state"))
            pr = await host.get_pull_request(REPO, 1)
            await pipeline.run(
                ReviewRequest(REPO, 1, HeadSha(pr.head_sha), Trigger.CLI, force=True)
            )

    with pytest.raises(LLMBudgetExhausted):
        asyncio.run(run())
    assert len(scripted_model.chat_requests) == 4

"""A paused PR gets no automatic review; an explicit chat or CLI review still runs. A draft gets
no review and no green status."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.e2e._harness import review_answer
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel, reply

from auto_review.hosts import ForgejoHost, HeadSha, RepoRef
from auto_review.llm import LLMClient
from auto_review.memory import set_paused
from auto_review.review import (
    Outcome,
    PipelineOptions,
    ReviewOutcome,
    ReviewPipeline,
    ReviewRequest,
    Trigger,
)
from auto_review.settings import LLMConfig
from auto_review.store import Store

REPO = RepoRef("alice", "demo")


@dataclass
class Setup:
    forge: FakeForge
    model: ScriptedModel
    config: LLMConfig
    store: Store
    tmp_path: Path

    def review(self, trigger: Trigger) -> ReviewOutcome:
        async def run() -> ReviewOutcome:
            async with httpx.AsyncClient(trust_env=False) as http:
                host = ForgejoHost(http, base_url=self.forge.url, token=self.forge.bot_token)
                options = PipelineOptions(workspace_parent=self.tmp_path, report_errors=True)
                llm = LLMClient(self.config, http)
                pipeline = ReviewPipeline(options, host, llm, self.store)
                pr = await host.get_pull_request(REPO, 1)
                return await pipeline.run(
                    ReviewRequest(REPO, 1, HeadSha(pr.head_sha), trigger, force=True)
                )

        return asyncio.run(run())


@pytest.fixture
def paused(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> Setup:
    """PR alice/demo#1 with automatic reviews paused by @alice."""
    store = Store.in_state_dir(tmp_path / "state")
    set_paused(store, REPO, 1, paused=True, by="alice")
    return Setup(fake_forge, scripted_model, scripted_llm_config, store, tmp_path)


@pytest.mark.parametrize("trigger", [Trigger.CI, Trigger.WEBHOOK])
def test_automatic_review_of_a_paused_pr_is_skipped_without_calling_the_model(
    paused: Setup, trigger: Trigger
) -> None:
    outcome = paused.review(trigger)
    assert (outcome.outcome, outcome.reason) == (Outcome.SKIPPED, "paused")
    assert paused.model.chat_requests == []
    assert paused.forge.repo("alice/demo").reviews == []
    # The PR is not left pending: a paused PR's status says why nothing was reviewed.
    statuses = [(s.state, s.description) for s in paused.forge.repo("alice/demo").statuses]
    assert statuses == [("success", "auto-review: paused")]


@pytest.mark.parametrize("trigger", [Trigger.CHAT, Trigger.CLI])
def test_explicit_review_of_a_paused_pr_still_runs(paused: Setup, trigger: Trigger) -> None:
    paused.model.respond_with(lambda _request: reply(review_answer()))
    assert paused.review(trigger).outcome is Outcome.POSTED
    assert len(paused.forge.repo("alice/demo").reviews) == 1


def test_automatic_review_runs_again_after_resume(paused: Setup) -> None:
    set_paused(paused.store, REPO, 1, paused=False, by="alice")
    paused.model.respond_with(lambda _request: reply(review_answer()))
    assert paused.review(Trigger.CI).outcome is Outcome.POSTED


@pytest.fixture
def drafted(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> Setup:
    """PR alice/demo#1 retitled as a draft ("WIP: ...")."""
    forge_repo.title = "WIP: Fix things"
    store = Store.in_state_dir(tmp_path / "state")
    return Setup(fake_forge, scripted_model, scripted_llm_config, store, tmp_path)


@pytest.mark.parametrize("trigger", [Trigger.CI, Trigger.WEBHOOK, Trigger.CHAT])
def test_a_draft_is_not_reviewed_and_not_given_a_green_status(
    drafted: Setup, trigger: Trigger
) -> None:
    # closes F73: a PR queued for review and then retitled "WIP: ..." before the job ran got
    # ``success`` ("skipped: draft pull request") on a head nobody reviewed; retitled back, the
    # PR was green for branch protection. The skip now leaves the status pending.
    outcome = drafted.review(trigger)
    assert (outcome.outcome, outcome.reason) == (Outcome.SKIPPED, "draft pull request")
    assert drafted.model.chat_requests == []
    statuses = [(s.state, s.description) for s in drafted.forge.repo("alice/demo").statuses]
    assert "success" not in {state for state, _ in statuses}
    assert statuses[-1] == ("pending", "auto-review: draft; reviewed when it is marked ready")

"""What the sandbox refused a review's clone is reported once, as the clone ends, whatever the
review does afterwards (the gateway counts it for the ``AutoReviewCloneEgressRefused`` alert)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e._harness import review_answer
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel, reply
from tests.fakes.llm_script import Responder, server_error

from auto_review.errors import AutoReviewError, HostError, LLMError
from auto_review.hosts import ForgejoHost, HeadSha, PullRequest, RepoRef
from auto_review.llm import LLMClient
from auto_review.review import Outcome, PipelineOptions, ReviewPipeline, ReviewRequest, Trigger
from auto_review.review._host import WorkspaceFactory
from auto_review.review.workspace import Workspace, WorkspaceError
from auto_review.sandbox import EgressRefusal
from auto_review.settings import LLMConfig

REPO = RepoRef("alice", "demo")
REFUSED = (
    EgressRefusal(403, "destination not allowed by the sandbox policy", "evil.example:443"),
    EgressRefusal(403, "destination not allowed by the sandbox policy", "evil.example:80"),
    EgressRefusal(502, "the forge's origin did not answer"),
)


async def _refused_clone(pr: PullRequest, since: str | None) -> Workspace:
    raise WorkspaceError("git fetch failed (exit 128)", egress_refusals=REFUSED)


class _ReviewNotPosted(ForgejoHost):
    """The forge takes statuses but refuses the review itself (an outage between the two)."""

    async def create_review(self, *args: Any, **kwargs: Any) -> int:
        raise HostError("the forge answered 502")


def _review(
    forge: FakeForge,
    config: LLMConfig,
    tmp_path: Path,
    *,
    host_type: type[ForgejoHost] = ForgejoHost,
    clone: WorkspaceFactory = _refused_clone,
) -> tuple[list[tuple[int, ...]], AutoReviewError | None]:
    """Run one review of alice/demo#1; what the observer was told, and the error if it failed."""
    told: list[tuple[int, ...]] = []

    async def run() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            host = host_type(http, base_url=forge.url, token=forge.bot_token)
            pipeline = ReviewPipeline(
                PipelineOptions(workspace_parent=tmp_path),
                host,
                LLMClient(config, http),
                None,
                workspace_factory=clone,
                on_egress_refused=told.append,
            )
            pr = await host.get_pull_request(REPO, 1)
            outcome = await pipeline.run(ReviewRequest(REPO, 1, HeadSha(pr.head_sha), Trigger.CI))
            assert outcome.outcome is Outcome.POSTED

    try:
        asyncio.run(run())
    except AutoReviewError as exc:
        return told, exc
    return told, None


def test_clone_egress_refusals_are_reported_once_when_the_review_is_posted(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> None:
    scripted_model.respond_with(lambda request: reply(json.dumps(review_answer())))
    told, failed = _review(fake_forge, scripted_llm_config, tmp_path)
    assert failed is None
    assert told == [(403, 403, 502)]
    assert len(fake_forge.repo("alice/demo").reviews) == 1  # positive control: it was posted


@pytest.mark.parametrize(
    ("answer", "host_type", "error"),
    [
        # 400: not retried, so the review fails at once, with no outcome to count from.
        pytest.param(
            lambda request: server_error(400, "schema rejected"),
            ForgejoHost,
            LLMError,
            id="model-then-fails",
        ),
        pytest.param(
            lambda request: reply(json.dumps(review_answer())),
            _ReviewNotPosted,
            HostError,
            id="posting-then-fails",
        ),
    ],
)
def test_clone_egress_refusals_are_reported_when_the_review_then_fails(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
    *,
    answer: Responder,
    host_type: type[ForgejoHost],
    error: type[AutoReviewError],
) -> None:
    scripted_model.respond_with(answer)
    told, failed = _review(fake_forge, scripted_llm_config, tmp_path, host_type=host_type)
    assert isinstance(failed, error)
    assert told == [(403, 403, 502)]
    assert fake_forge.repo("alice/demo").reviews == []


def test_a_clone_with_nothing_refused_reports_nothing(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> None:
    async def clean_failure(pr: PullRequest, since: str | None) -> Workspace:
        raise WorkspaceError("git fetch failed (exit 128)")

    scripted_model.respond_with(lambda request: reply(json.dumps(review_answer())))
    told, failed = _review(fake_forge, scripted_llm_config, tmp_path, clone=clean_failure)
    assert (told, failed) == ([], None)
    assert len(fake_forge.repo("alice/demo").reviews) == 1

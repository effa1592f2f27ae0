"""Run the real review pipeline against the fake forge and the scripted model."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.fakes.forge import FakeForge
from tests.fakes.llm import ScriptedModel, reply
from tests.fakes.llm_script import RecordedRequest, Step

from auto_review.hosts import HeadSha, RepoRef
from auto_review.hosts.forgejo import ForgejoHost
from auto_review.llm import LLMClient
from auto_review.review import ReviewOutcome, ReviewRequest, Trigger
from auto_review.review._options import PipelineOptions
from auto_review.review.pipeline import ReviewPipeline
from auto_review.settings import LLMConfig
from auto_review.store import MEMORY, Store

__all__ = ["Harness", "NoClone", "finding", "line_of", "review_answer"]


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


def finding(
    path: str,
    line: int,
    evidence: str,
    *,
    severity: str = "error",
    message: str = "bad",
    category: str = "bug",
    end: int | None = None,
) -> dict[str, Any]:
    return {
        "path": path,
        "line_start": line,
        "line_end": end or line,
        "severity": severity,
        "category": category,
        "message": message,
        "evidence": evidence,
        "suggestion": None,
    }


def review_answer(*findings: dict[str, Any], summary: str = "Changes things.") -> dict[str, Any]:
    return {"summary": summary, "walkthrough": "- files changed", "findings": list(findings)}


def _keep_all(request: RecordedRequest) -> dict[str, Any]:
    text = request.text()
    count = text.count("<<<UNTRUSTED finding_")
    return {"verdicts": [{"index": i, "keep": True, "reason": "ok"} for i in range(count)]}


class NoClone:
    """Wraps a host so that its clone URL is one the workspace refuses: every clone fails."""

    def __init__(self, host: Any) -> None:
        self._host = host

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    def clone_url(self, repo: Any) -> str:
        return "ftp://127.0.0.1/nowhere.git"


@dataclass
class Harness:
    forge: FakeForge
    model: ScriptedModel
    llm_config: LLMConfig
    tmp_path: Path
    store: Store = field(default_factory=lambda: Store.open(MEMORY))
    sleeps: list[float] = field(default_factory=list)
    wrap_host: Callable[[Any], Any] = field(default=lambda host: host)

    def answer_reviews(self, answer: Callable[[RecordedRequest], Any] | Any) -> None:
        """Reasoning calls get ``answer`` (or ``answer(request)``); cheap calls keep all."""

        def respond(request: RecordedRequest) -> Step:
            if request.body.get("model") == "scripted-cheap":
                return reply(json.dumps(_keep_all(request)))
            value = answer(request) if callable(answer) else answer
            return value if not isinstance(value, dict) else reply(json.dumps(value))

        self.model.respond_with(respond)

    def review_requests(self) -> list[RecordedRequest]:
        return [r for r in self.model.chat_requests if r.body.get("model") == "scripted-reasoning"]

    async def run(
        self,
        full_name: str,
        number: int,
        *,
        options: PipelineOptions | None = None,
        **request: Any,
    ) -> ReviewOutcome:
        repo = RepoRef.parse(full_name)
        opts = options or PipelineOptions(workspace_parent=self.tmp_path, report_errors=True)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        async with httpx.AsyncClient(trust_env=False) as http:
            host = ForgejoHost(http, base_url=self.forge.url, token=self.forge.bot_token)
            llm = LLMClient(self.llm_config, http, sleep=sleep, jitter=lambda: 0.0)
            pipeline = ReviewPipeline(opts, self.wrap_host(host), llm, self.store)
            pr = await host.get_pull_request(repo, number)
            head = request.pop("head_sha", pr.head_sha)
            return await pipeline.run(
                ReviewRequest(repo, number, HeadSha(head), Trigger.CLI, **request)
            )

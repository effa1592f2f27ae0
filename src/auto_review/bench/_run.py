"""``run_bench``: each fixture through the real review stages, scored against its labels.

The stages are the pipeline's own (``ReviewPipeline.prepare`` as a dry run: diff parsing and
rendering, triage, context, generation with repair, deterministic verification, the severity
floor, model verification when a cheap tier is configured, and the guard) over a
``FixtureHost``; nothing is posted. Latency is the wall time of ``prepare`` per fixture.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from auto_review.bench._fixture import Fixture
from auto_review.bench._host import FixtureHost
from auto_review.bench._score import BenchSummary, FixtureResult, compare, score_fixture, summarise
from auto_review.errors import AutoReviewError
from auto_review.hosts import PullRequest
from auto_review.llm import LLMClient, PriceTable
from auto_review.review._options import PipelineOptions
from auto_review.review._request import ReviewOutcome, ReviewRequest, Trigger
from auto_review.review.pipeline import ReviewPipeline
from auto_review.review.workspace import Workspace

__all__ = ["BenchReport", "run_bench"]


@dataclass(frozen=True)
class BenchReport:
    """The ``--json`` form of a run: ``summary`` is what a later ``--baseline`` compares to."""

    model: str
    results: tuple[FixtureResult, ...]
    summary: BenchSummary
    regressions: tuple[str, ...] = ()
    baseline: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "summary": self.summary.to_dict(),
            "results": [asdict(r) for r in self.results],
            "baseline": self.baseline,
            "regressions": list(self.regressions),
        }


async def _one(
    fixture: Fixture,
    llm: LLMClient,
    options: PipelineOptions,
    prices: PriceTable | None,
    clock: Callable[[], float],
) -> FixtureResult:
    host = FixtureHost(fixture)
    with tempfile.TemporaryDirectory(prefix="ar-bench-") as tmp:

        async def workspace(_pr: PullRequest, _since: str | None) -> Workspace:
            return host.workspace(Path(tmp))

        pipeline = ReviewPipeline(
            options, host, llm, None, prices=prices, workspace_factory=workspace
        )
        request = ReviewRequest(host.repo, 1, host.head, Trigger.CLI, force=True, dry_run=True)
        started = clock()
        try:
            prepared = await pipeline.prepare(request)
        except AutoReviewError as exc:
            return FixtureResult(
                fixture.name, fixture.must_be_silent, len(fixture.expected), 0, 0, 0,
                len(fixture.expected), clock() - started, 0, 0, error=exc.message,
            )  # fmt: skip
        latency = clock() - started
    if isinstance(prepared, ReviewOutcome):  # skipped by triage: nothing was reviewed
        return score_fixture(fixture, [], latency_secs=latency, prompt_tokens=0,
                             completion_tokens=0)  # fmt: skip
    usage = prepared.report.usage
    return score_fixture(
        fixture, prepared.findings, latency_secs=round(latency, 3),
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
    )  # fmt: skip


async def run_bench(
    fixtures: Sequence[Fixture],
    *,
    llm: LLMClient,
    options: PipelineOptions,
    model: str,
    prices: PriceTable | None = None,
    baseline: Mapping[str, Any] | None = None,
    baseline_name: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_result: Callable[[FixtureResult], None] | None = None,
) -> BenchReport:
    """Run every fixture in order (``on_result`` sees each result); failures are reported."""
    collected = []
    for fixture in fixtures:
        result = await _one(fixture, llm, options, prices, clock)
        collected.append(result)
        if on_result is not None:
            on_result(result)
    results = tuple(collected)
    summary = summarise(results)
    regressions = tuple(compare(summary, baseline)) if baseline is not None else ()
    return BenchReport(model, results, summary, regressions, baseline_name)

"""Generation: one structured review call per file group, with the llm layer's repair loop.

Each call asks the reasoning tier for a ``ReviewOutput`` (strict JSON schema, temperature 0,
``max_tokens`` from the settings); ``complete_structured`` repairs fences and stray prose
locally, then re-asks with the validation error (at most 3 attempts). A group whose output is
still invalid becomes unreviewed, named with the reason; only when every group fails does the
stage fail. Transport errors (429, 5xx, timeouts, already retried by the client) propagate so
the job queue can retry the whole review later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from auto_review.errors import LLMOutputInvalid, ReviewError
from auto_review.llm import LLMClient, Tier, complete_structured
from auto_review.review.findings import Finding, ReviewOutput

__all__ = ["Generated", "GroupPrompt", "generate"]

_CONCURRENCY = 2


@dataclass(frozen=True)
class GroupPrompt:
    paths: tuple[str, ...]
    user: str


@dataclass
class Generated:
    summaries: list[str] = field(default_factory=list)
    walkthroughs: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    attempts: int = 0
    repaired_locally: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


async def generate(
    llm: LLMClient,
    *,
    system: str,
    groups: Sequence[GroupPrompt],
    max_tokens: int | None = None,
    timeout_secs: float | None = None,
) -> Generated:
    """Run every group's review call; merge the answers in group order."""
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(group: GroupPrompt) -> tuple[ReviewOutput, int, bool] | LLMOutputInvalid:
        async with gate:
            try:
                result = await complete_structured(
                    llm,
                    Tier.REASONING,
                    system=system,
                    user=group.user,
                    output_model=ReviewOutput,
                    schema_name="review",
                    max_tokens=max_tokens,
                    timeout_secs=timeout_secs,
                )
            except LLMOutputInvalid as exc:
                return exc
            return result.value, result.attempts, result.repaired_locally

    answers = await asyncio.gather(*(one(g) for g in groups))
    out = Generated()
    for group, answer in zip(groups, answers, strict=True):
        if isinstance(answer, LLMOutputInvalid):
            out.attempts += 3
            reason = "the model's answer stayed invalid after 3 attempts"
            out.failed.extend((p, reason) for p in group.paths)
            continue
        value, attempts, repaired = answer
        out.attempts += attempts
        out.repaired_locally += int(repaired)
        if value.summary.strip():
            out.summaries.append(value.summary.strip())
        if value.walkthrough.strip():
            out.walkthroughs.append(value.walkthrough.strip())
        out.findings.extend(Finding.from_output(f) for f in value.findings)
    if groups and len(out.failed) == sum(len(g.paths) for g in groups):
        raise ReviewError("the model's answers stayed invalid after repeated repair attempts")
    return out

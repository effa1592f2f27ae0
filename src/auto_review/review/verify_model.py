"""Model verification of findings that passed the deterministic checks (cheap tier, optional).

Simple mode: one call sees every finding with the numbered code around it (not a prefix of the
diff, so findings in late files are judged on their own code) and returns a keep/drop verdict
per index. Agentic mode (``AR_AGENTIC_VERIFIER``, needs a workspace): per finding a short loop
in which the model may call ``read_file`` or ``search`` (run by ``_isolation.run_analysis`` in
the ``analyze`` sandbox) before its verdict.

Failure policy, stated in the review summary either way: when the verifier call fails or its
answer stays invalid, findings are kept as checked deterministically and ``note`` says so; an
index without a verdict is kept. Nothing is kept or dropped silently.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from auto_review.errors import LLMError
from auto_review.llm import UNTRUSTED_DATA_RULE, LLMClient, PromptBuilder, Tier, complete_structured
from auto_review.review._isolation import AnalysisFailed, run_analysis
from auto_review.review.findings import Finding
from auto_review.review.prompts import VERIFY_SYSTEM, cap_text
from auto_review.settings import Isolation

__all__ = ["ModelVerdicts", "verify_agentic", "verify_simple"]

_CONTEXT_LINES = 8
_AGENT_TURNS = 4
_AGENT_MAX_FINDINGS = 12
_TOOL_TIMEOUT = 30.0

FileLines = Callable[[str], Sequence[str] | None]


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=0)
    keep: bool
    reason: str = Field(max_length=500)


class _Verification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdicts: list[_Verdict]


class _AgentAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: Literal["read_file", "search", "verdict"]
    path: str | None = Field(description="read_file/search: a repository-relative path")
    pattern: str | None = Field(description="search: an RE2 regular expression")
    start_line: int | None
    end_line: int | None
    keep: bool | None = Field(description="verdict: keep the finding?")
    reason: str | None


@dataclass
class ModelVerdicts:
    kept: list[Finding] = field(default_factory=list)
    dropped: list[tuple[Finding, str]] = field(default_factory=list)
    note: str | None = None  # said in the summary when verification was partial or failed


def _snippet(finding: Finding, lines: Sequence[str] | None) -> str:
    if lines is None:
        return finding.evidence
    first = max(1, finding.line_start - _CONTEXT_LINES)
    last = min(len(lines), finding.line_end + _CONTEXT_LINES)
    return "\n".join(f"{n}: {lines[n - 1]}" for n in range(first, last + 1))


def _describe(index: int, finding: Finding, lines: Sequence[str] | None) -> str:
    head = (
        f"[{index}] {finding.severity} {finding.category} at {finding.path}:"
        f"{finding.line_start}-{finding.line_end}\nmessage: {finding.message}\n"
    )
    return head + "code:\n" + cap_text(_snippet(finding, lines), 4000)


async def verify_simple(
    llm: LLMClient, findings: Sequence[Finding], file_lines: FileLines, *, max_tokens: int
) -> ModelVerdicts:
    """One cheap-tier call judging every finding; fails open with a note."""
    if not findings:
        return ModelVerdicts()
    b = PromptBuilder().text("Findings to check, each with the code around it:")
    for index, finding in enumerate(findings):
        b.untrusted(f"finding_{index}", _describe(index, finding, file_lines(finding.path)))
    b.text("Return one verdict per finding index.")
    try:
        result = await complete_structured(
            llm,
            Tier.CHEAP,
            system=VERIFY_SYSTEM + "\n\n" + UNTRUSTED_DATA_RULE,
            user=b.build().text,
            output_model=_Verification,
            schema_name="verification",
            max_tokens=max_tokens,
        )
    except LLMError as exc:
        return ModelVerdicts(
            kept=list(findings),
            note=f"the model verifier failed ({type(exc).__name__}); "
            "findings were checked deterministically only",
        )
    verdicts = {v.index: v for v in result.value.verdicts}
    out = ModelVerdicts()
    for index, finding in enumerate(findings):
        verdict = verdicts.get(index)
        if verdict is not None and not verdict.keep:
            out.dropped.append((finding, "rejected by the verifier"))
        else:
            out.kept.append(finding)
    missing = sum(1 for i in range(len(findings)) if i not in verdicts)
    if missing:
        out.note = f"the model verifier gave no verdict on {missing} finding(s); they were kept"
    return out


_AGENT_SYSTEM = (
    VERIFY_SYSTEM
    + "\nYou are checking ONE finding and may look at the repository first. Each turn answer "
    "with one action: read_file (path, optional start_line/end_line), search (pattern, optional "
    "path) or verdict (keep, reason). Unused fields are null. Give a verdict within "
    f"{_AGENT_TURNS} turns.\n\n" + UNTRUSTED_DATA_RULE
)


async def _tool(root: Path, action: _AgentAction, isolation: Isolation) -> str:
    if action.tool == "read_file":
        payload = {
            "root": str(root),
            "path": action.path or "",
            "start_line": action.start_line,
            "end_line": action.end_line,
        }
        task = "read_file"
    else:
        payload = {"root": str(root), "pattern": action.pattern or "", "path": action.path}
        task = "search"
    try:
        answer = await asyncio.to_thread(
            run_analysis, task, payload, timeout=_TOOL_TIMEOUT, isolation=isolation
        )
    except AnalysisFailed as exc:
        return json.dumps({"ok": False, "error": exc.message})
    return cap_text(json.dumps(answer), 6000)


async def verify_agentic(
    llm: LLMClient,
    findings: Sequence[Finding],
    file_lines: FileLines,
    *,
    root: Path,
    max_tokens: int,
    isolation: Isolation = Isolation.FULL,
) -> ModelVerdicts:
    """Per finding, a few read-only tool turns and a verdict; fails open per finding."""
    out = ModelVerdicts()
    undecided = 0
    for index, finding in enumerate(findings):
        if index >= _AGENT_MAX_FINDINGS:
            out.kept.append(finding)
            undecided += 1
            continue
        transcript: list[str] = []
        verdict: bool | None = None
        for _turn in range(_AGENT_TURNS):
            b = PromptBuilder().text("The finding:")
            b.untrusted("finding", _describe(0, finding, file_lines(finding.path)))
            if transcript:
                b.text("Tool results so far:")
                b.untrusted("tool_results", "\n\n".join(transcript))
            b.text("Your next action as JSON.")
            try:
                action = (
                    await complete_structured(
                        llm,
                        Tier.CHEAP,
                        system=_AGENT_SYSTEM,
                        user=b.build().text,
                        output_model=_AgentAction,
                        schema_name="agent_action",
                        max_tokens=max_tokens,
                    )
                ).value
            except LLMError:
                break
            if action.tool == "verdict":
                verdict = action.keep
                break
            transcript.append(f"{action.tool} -> {await _tool(root, action, isolation)}")
        if verdict is False:
            out.dropped.append((finding, "rejected by the verifier"))
        else:
            out.kept.append(finding)
            undecided += verdict is None
    if undecided:
        out.note = f"the agentic verifier reached no verdict on {undecided} finding(s); kept"
    return out

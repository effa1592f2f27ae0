"""The middle of a review: from triaged files to a ``PreparedReview`` (nothing posted here).

Context -> render -> budget -> generate -> deterministic verify -> floor -> model verify ->
guard -> carry-over -> event, body and status. ``pipeline.py`` calls ``review_stages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from auto_review.errors import HostError
from auto_review.hosts import PullRequest
from auto_review.llm import LLMClient, Tier, UsageLedger, estimate_tokens
from auto_review.memory.history import PostedFinding, ReviewHistory
from auto_review.memory.learnings import LearningsStore
from auto_review.memory.vectors import CodeVectors
from auto_review.review._carry import still_open
from auto_review.review._host import PipelineHost
from auto_review.review._options import PipelineOptions
from auto_review.review._request import ReviewRequest
from auto_review.review._types import PreparedReview
from auto_review.review.budget import RenderedFile, plan_calls
from auto_review.review.config import RepoConfig
from auto_review.review.context import build_context
from auto_review.review.diff import render_file
from auto_review.review.findings import Finding, Severity
from auto_review.review.generate import GroupPrompt, generate
from auto_review.review.guard import guard_findings
from auto_review.review.metadata import check_metadata
from auto_review.review.prompts import CONTEXT_CAP, ReviewPromptParts, review_prompt, review_system
from auto_review.review.publish import ReviewReport, compute_event, status_for
from auto_review.review.triage import TriageResult
from auto_review.review.verify import check_findings
from auto_review.review.verify_model import ModelVerdicts, verify_agentic, verify_simple
from auto_review.review.workspace import Workspace

__all__ = ["StageInputs", "review_stages"]


@dataclass(frozen=True)
class StageInputs:
    request: ReviewRequest
    pr: PullRequest
    config: RepoConfig
    triaged: TriageResult
    workspace: Workspace | None
    notes: list[str]
    since: str | None
    options: PipelineOptions
    host: PipelineHost
    llm: LLMClient  # with this review's ledger
    ledger: UsageLedger
    history: ReviewHistory | None
    learnings: LearningsStore | None
    vectors: CodeVectors | None


def _parts(
    s: StageInputs, paths: Sequence[str], context: str, index: int, count: int
) -> ReviewPromptParts:
    instructions = sorted(
        {
            (pi.path, pi.instructions)
            for pi in s.config.path_instructions
            if any(pi.matches(p) for p in paths)
        }
    )
    return ReviewPromptParts(
        repo=s.request.repo.full_name,
        number=s.request.number,
        title=s.pr.title,
        body=s.pr.body,
        guidelines=s.config.guidelines,
        path_instructions=instructions,
        changed_files=list(paths),
        code_context=context,
        learnings=(),
        incremental_since=s.since,
        group_index=index,
        group_count=count,
    )


async def _model_verify(s: StageInputs, findings: list[Finding]) -> ModelVerdicts:
    file_lines = s.workspace.lines if s.workspace is not None else (lambda _p: None)
    if not findings or not s.llm.has_tier(Tier.CHEAP):
        return ModelVerdicts(kept=findings)
    if s.options.agentic_verifier and s.workspace is not None:
        return await verify_agentic(
            s.llm,
            findings,
            file_lines,
            root=s.workspace.root,
            max_tokens=1024,
            isolation=s.options.isolation,
        )
    if s.options.agentic_verifier:
        s.notes.append("the agentic verifier needs a checkout; the simple verifier ran instead")
    return await verify_simple(s.llm, findings, file_lines, max_tokens=2048)


async def _file_text(s: StageInputs, path: str) -> str | None:
    if s.workspace is not None:
        lines = s.workspace.lines(path)
        return None if lines is None else "\n".join(lines)
    try:
        data = await s.host.get_file(s.request.repo, path, s.request.head_sha)
    except HostError:
        return None
    return None if data is None else data.decode("utf-8", "replace")


async def review_stages(s: StageInputs) -> PreparedReview:
    """Everything between triage and posting."""
    files = {f.path: f for f in s.triaged.review}
    ws = s.workspace
    lines_of = ws.lines if ws is not None else (lambda _p: None)
    context = await build_context(
        repo=s.request.repo,
        workspace=ws,
        files=list(files.values()),
        llm=s.llm,
        learnings=s.learnings,
        vectors=s.vectors,
        isolation=s.options.isolation,
    )
    s.notes.extend(context.notes)
    rendered = [
        RenderedFile(
            f.path,
            render_file(f, new_lines=lines_of(f.path)),
            render_file(f),
            extra_tokens=min(estimate_tokens(context.for_files([f.path])), CONTEXT_CAP // 3),
        )
        for f in files.values()
    ]
    system = review_system(s.config.language)
    overhead = review_prompt(_parts(s, list(files), "", 0, 1), "")
    learn_text = "\n".join(context.learnings)
    # Per-file context is counted with each file (RenderedFile.extra_tokens), not here.
    fixed = estimate_tokens(system) + estimate_tokens(overhead) + estimate_tokens(learn_text) + 200
    plan = plan_calls(
        rendered,
        context_tokens=s.options.context_tokens,
        output_tokens=s.options.max_output_tokens,
        fixed_tokens=fixed,
        max_calls=s.options.max_llm_calls,
        estimate=estimate_tokens,
    )
    groups = []
    for index, group in enumerate(plan.groups):
        parts = _parts(s, group.paths, context.for_files(group.paths), index, len(plan.groups))
        parts = replace(parts, learnings=tuple(context.learnings))
        groups.append(GroupPrompt(tuple(group.paths), review_prompt(parts, group.text)))
    generated = await generate(
        s.llm,
        system=system,
        groups=groups,
        max_tokens=s.options.max_output_tokens,
        timeout_secs=s.options.llm_timeout_secs,
    )
    checked = check_findings(generated.findings, files, lines_of)
    floor = s.config.severity_floor or s.options.severity_floor
    above = [f for f in checked.kept if f.severity.rank >= floor.rank]
    verdicts = await _model_verify(s, above)
    if verdicts.note:
        s.notes.append(verdicts.note)
    try:
        earlier = await s.host.list_review_comments(s.request.repo, s.request.number)
    except HostError:
        earlier = []
        s.notes.append("earlier comments could not be read; duplicates were not filtered")
    reviewed = frozenset(p for g in plan.groups for p in g.paths) - {p for p, _ in generated.failed}
    guarded = guard_findings(
        verdicts.kept,
        floor=floor,
        reviewed_paths=reviewed,
        earlier=earlier,
        bot_login=s.options.bot_login,
    )
    # Blocking findings that stay open without a new comment: errors verified again in this run
    # but already posted, and (incremental runs) earlier errors whose code is still there.
    repeated = [f for f in guarded.repeated if f.severity is Severity.ERROR]
    carried_lines = [
        f"- 🔴 `{f.path}:{f.anchor or f.line_start}`: {f.message[:300]} (already commented)"
        for f in repeated
    ]
    earlier_open: list[PostedFinding] = []
    if s.since is not None and s.history is not None:
        posted = s.history.posted_findings(s.request.repo, s.request.number)
        current = {f.fingerprint for f in (*guarded.kept, *guarded.repeated)}
        earlier_open = await still_open(posted, current, lambda p: _file_text(s, p))
        carried_lines += [
            f"- 🔴 `{c.path}:{c.line}` (from {c.head_sha[:10]}): {c.message[:300]}"
            for c in earlier_open
            if c.severity == Severity.ERROR.value
        ]
    carried = carried_lines
    findings = list(guarded.kept)
    checks: list[str] = []
    failed_checks = 0
    if s.config.pr_metadata_check.enabled:
        meta = await check_metadata(
            s.llm, title=s.pr.title, body=s.pr.body, check=s.config.pr_metadata_check
        )
        checks = meta.lines()
        failed_checks = int(meta.passed is False)
    # closes F74: "nothing found" is not "nothing open": a finding verified again but already
    # posted, or posted earlier and still in the code an incremental run did not see, would
    # otherwise be approved away by a re-run or any new commit.
    clean = not guarded.repeated and not earlier_open
    event = compute_event(
        findings,
        carried_errors=len(carried),
        approve_when_clean=s.config.approve_when_clean and clean,
        failed_checks=failed_checks,
    )
    unreviewed = [*plan.unreviewed, *generated.failed]
    report = ReviewReport(
        head_sha=s.request.head_sha,
        run=s.request.run,
        summaries=generated.summaries,
        walkthroughs=generated.walkthroughs,
        carried=carried,
        unreviewed=unreviewed,
        skipped=[(p, str(r)) for p, r in s.triaged.skipped],
        notes=list(s.notes),
        checks=checks,
        dropped={
            "unverifiable (evidence or lines not in the diff)": len(checked.dropped),
            "below the severity floor": len(checked.kept) - len(above) + guarded.below_floor,
            "rejected by the verifier": len(verdicts.dropped),
            "already posted earlier": guarded.already_posted,
            "duplicates": guarded.duplicates,
            "over the per-review cap (least severe first)": guarded.over_cap,
        },
        usage=s.ledger.totals(),
        show_cost=s.options.show_cost,
    )
    return PreparedReview(
        pr=s.pr,
        event=event,
        report=report,
        anchored=findings,
        status=status_for(findings, carried_errors=len(carried), failed_checks=failed_checks),
        findings=findings,
        carried_errors=len(carried),
        dropped_by_verifier=len(checked.dropped) + len(verdicts.dropped),
        unreviewed=unreviewed,
        incremental_since=s.since,
    )

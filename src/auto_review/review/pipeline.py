"""``ReviewPipeline``: one PR in, one verified review and a commit status out.

Stages, in order (each its own module): PR and history check -> pending status -> repo config
from the BASE commit -> workspace (hermetic clone, once per review) -> diff -> triage ->
``_stages.review_stages`` (context, budget, generation with repair, deterministic verification,
severity floor, model verification, guard, carry-over of still-open blocking findings) ->
re-fetch the PR (head moved: post nothing, SUPERSEDED) -> final status, then one review (unless
an earlier attempt of the same job posted it, found by the run in its marker) -> history.

The diff (``_diffsource``) is computed by git in the clone at the head reviewed: from the last
reviewed head when there is one (no forge route serves it on a private repository), else the
whole PR's from the base commit. Only when the clone gives neither does the review take the
API's diff, which is not bound to the head (F77): such a review never turns the status green.

Errors: transient ``HostError``/``LLMError`` propagate for the job queue to retry; the queue
posts the ``error`` status when a job finally fails. With ``report_errors`` (CLI use, no queue)
the pipeline posts that ``error`` status itself before re-raising. PR text never reaches the
event, the floor or any setting: those come from the operator and the base-branch config.
"""

from __future__ import annotations

from dataclasses import replace

from auto_review.errors import AutoReviewError, HostError, ReviewError, StoreError
from auto_review.hosts import CommitState, CommitStatus, PullRequest, is_sha
from auto_review.llm import LLMClient, PriceTable, UsageLedger, UsageTotals
from auto_review.logs import get_logger
from auto_review.memory.history import PostedFinding, ReviewHistory, ReviewRun
from auto_review.memory.learnings import LearningsStore
from auto_review.memory.pauses import is_paused
from auto_review.memory.vectors import CodeVectors
from auto_review.review._diffsource import (
    UNBOUND_NOTE,
    review_diff,
    unbound_event,
    unbound_status,
)
from auto_review.review._host import EgressObserver, PipelineHost, WorkspaceFactory, clone_for
from auto_review.review._isolation import Refusal
from auto_review.review._options import PipelineOptions
from auto_review.review._request import (
    Outcome,
    ReviewOutcome,
    ReviewRequest,
    TierUsage,
    Trigger,
)
from auto_review.review._stages import StageInputs, review_stages
from auto_review.review._types import PreparedReview
from auto_review.review.config import load_repo_config
from auto_review.review.diff import parse_diff
from auto_review.review.findings import Severity
from auto_review.review.publish import STATUS_CONTEXT, find_posted, post_review
from auto_review.review.triage import triage
from auto_review.review.workspace import Workspace, WorkspaceError
from auto_review.store import Store

__all__ = ["ReviewPipeline"]

_log = get_logger("review")
_LOGGED_REFUSALS = 5  # per clone; the proxy keeps up to 100, all alike in an attack
# Triggers a ``@bot pause`` stops; a chat ``@bot review`` or the operator's CLI still runs.
_AUTOMATIC = frozenset({Trigger.CI, Trigger.WEBHOOK})
_DRAFT_STATUS = "auto-review: draft; reviewed when it is marked ready"


class ReviewPipeline:
    """Implements ``ReviewRunner`` (``run``); ``prepare`` computes without posting."""

    def __init__(
        self,
        options: PipelineOptions,
        host: PipelineHost,
        llm: LLMClient,
        store: Store | None,
        *,
        prices: PriceTable | None = None,
        workspace_factory: WorkspaceFactory | None = None,
        on_egress_refused: EgressObserver | None = None,
    ) -> None:
        self._options = options
        self._host = host
        self._llm = llm
        self._prices = prices
        self._workspace_factory = workspace_factory or clone_for(host, options)
        self._on_egress_refused = on_egress_refused
        self._history = ReviewHistory(store) if store is not None else None
        self._learnings = LearningsStore(store) if store is not None else None
        self._vectors = CodeVectors(store) if store is not None else None
        self._store = store

    async def run(self, request: ReviewRequest) -> ReviewOutcome:
        """Review one PR head; see the module docstring for the stages and error policy."""
        try:
            prepared = await self.prepare(request)
            if isinstance(prepared, ReviewOutcome):
                return prepared
            return await self._publish(request, prepared)
        except AutoReviewError as exc:
            if self._options.report_errors and not request.dry_run:
                await self._status(request, CommitState.ERROR, f"auto-review failed: {exc.message}")
            raise

    async def _status(self, request: ReviewRequest, state: CommitState, text: str) -> None:
        status = CommitStatus(STATUS_CONTEXT, state, text[:140])
        try:
            await self._host.set_commit_status(request.repo, request.head_sha, status)
        except HostError:
            _log.warning("status_not_posted", state=state.value)

    async def prepare(self, request: ReviewRequest) -> PreparedReview | ReviewOutcome:
        """Every stage up to (not including) posting; the pending status is posted here."""
        if not is_sha(request.head_sha):
            raise ReviewError("the head SHA is not a full hexadecimal object id")
        if self._paused(request):
            await self._final_skip(request, "paused")
            return ReviewOutcome(Outcome.SKIPPED, "paused")
        pr = await self._host.get_pull_request(request.repo, request.number)
        if pr.head_sha != request.head_sha:
            return ReviewOutcome(Outcome.SUPERSEDED, "the pull request has a newer head")
        if not pr.is_open:
            return ReviewOutcome(Outcome.SKIPPED, "the pull request is closed")
        last = None
        if self._history is not None and not request.full:
            last = self._history.last_reviewed_head(request.repo, request.number)
        if last == request.head_sha and not request.force:
            return ReviewOutcome(Outcome.SKIPPED, "this head was already reviewed")
        if not request.dry_run:
            await self._status(request, CommitState.PENDING, "auto-review: reviewing")
        loaded = await load_repo_config(self._host, request.repo, pr.base_sha)
        if not loaded.config.enabled:
            await self._final_skip(request, "disabled by the repository config")
            return ReviewOutcome(Outcome.SKIPPED, "disabled by the repository config")
        notes = [f"`.auto_review.yaml`: {p}" for p in loaded.problems]
        if pr.draft:
            # closes F73: a draft is the PR author's word, and a title can change between the
            # queueing and now and back again later (no review event follows), so a skip of a
            # draft must not leave the head green. Decided before the clone: it needs no diff.
            if not request.dry_run:
                await self._status(request, CommitState.PENDING, _DRAFT_STATUS)
            return ReviewOutcome(Outcome.SKIPPED, "draft pull request")
        since = last if last and not request.force else None
        workspace: Workspace | None = None
        try:
            # First, for every review: the diff must be the head's own (F77), and a triage skip
            # turns the status green, so triage reads that diff too (docs/adr/0013).
            workspace = await self._workspace(pr, notes, since)
            diff = await review_diff(self._host, request, workspace, since)
            since = diff.since
            if not diff.bound:
                notes.append(UNBOUND_NOTE)
            triaged = triage(parse_diff(diff.text), is_ignored=loaded.config.is_ignored)
            if triaged.skip_pr is not None:
                # A trivial delta must not turn the status green while an earlier blocking
                # finding may still be open, nor while the metadata check may fail (closes F75:
                # it is no finding): then the review goes on (with no files for the model).
                checked = loaded.config.pr_metadata_check.enabled
                if since is None or not (checked or self._posted_errors(request)):
                    text = f"skipped: {triaged.skip_pr}"
                    await self._final_skip(request, text, bound=diff.bound)
                    return ReviewOutcome(Outcome.SKIPPED, triaged.skip_pr)
                notes.append(f"{triaged.skip_pr} since the last review; earlier findings rechecked")
            ledger = UsageLedger(self._prices)
            prepared = await review_stages(
                StageInputs(
                    request=request,
                    pr=pr,
                    config=loaded.config,
                    triaged=triaged,
                    workspace=workspace,
                    notes=notes,
                    since=since,
                    options=self._options,
                    host=self._host,
                    llm=self._llm.with_ledger(
                        ledger, max_chat_requests=self._options.max_model_requests
                    ),
                    ledger=ledger,
                    history=self._history,
                    learnings=self._learnings,
                    vectors=self._vectors,
                )
            )
            if not diff.bound:
                prepared.status = unbound_status(prepared.status)
                prepared.event = unbound_event(prepared.event)
                prepared.bound = False
            return prepared
        finally:
            if workspace is not None:
                workspace.close()

    def _posted_errors(self, request: ReviewRequest) -> bool:
        if self._history is None:
            return False
        posted = self._history.posted_findings(request.repo, request.number)
        return any(f.severity == "error" for f in posted)

    def _paused(self, request: ReviewRequest) -> bool:
        # Checked here, where every queued review starts, so CI and webhook intake need not.
        return (
            request.trigger in _AUTOMATIC
            and self._store is not None
            and is_paused(self._store, request.repo, request.number)
        )

    async def _workspace(
        self, pr: PullRequest, notes: list[str], since: str | None
    ) -> Workspace | None:
        """The checkout (None: a note says why)."""
        try:
            workspace = await self._workspace_factory(pr, since)
        except WorkspaceError as exc:
            self._refused(pr, exc.egress_refusals, cloned=False)
            if exc.detail:  # git's own words: for the operator, never for the PR (WorkspaceError)
                _log.warning(
                    "checkout_failed",
                    repo=pr.repo.full_name,
                    number=pr.number,
                    error=exc.message,
                    git_said=exc.detail,
                )
            notes.append(
                f"the repository could not be checked out ({exc.message}); "
                "the review used the diff only"
            )
            return None
        self._refused(pr, workspace.egress_refusals, cloned=True)
        return workspace

    def _refused(self, pr: PullRequest, refusals: tuple[Refusal, ...], *, cloned: bool) -> None:
        # Reported here, as soon as the clone ends, not with the outcome: a review that fails
        # later (model, forge, timeout) must still reach the operator's alert on these.
        _log_refusals(pr, refusals, cloned=cloned)
        if refusals and self._on_egress_refused is not None:
            self._on_egress_refused(tuple(r.status for r in refusals))

    async def _final_skip(self, request: ReviewRequest, text: str, *, bound: bool = True) -> None:
        status = CommitStatus(STATUS_CONTEXT, CommitState.SUCCESS, f"auto-review: {text}")
        if not bound:
            status = unbound_status(status)
        if not request.dry_run:
            await self._status(request, status.state, status.description)

    async def _publish(self, request: ReviewRequest, prepared: PreparedReview) -> ReviewOutcome:
        current = await self._host.get_pull_request(request.repo, request.number)
        if current.head_sha != request.head_sha:
            return ReviewOutcome(Outcome.SUPERSEDED, "the pull request moved to a newer head")
        counts = {s: sum(1 for f in prepared.findings if f.severity is s) for s in Severity}
        usage = prepared.report.usage
        outcome = ReviewOutcome(
            Outcome.POSTED,
            prepared.status.description,
            errors=counts[Severity.ERROR] + prepared.carried_errors,
            warnings=counts[Severity.WARNING],
            notes=counts[Severity.NOTE],
            dropped_by_verifier=prepared.dropped_by_verifier,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cost_usd=usage.cost_usd if usage else 0.0,
            unreviewed_files=tuple(p for p, _ in prepared.unreviewed),
            usage_by_tier=_usage_by_tier(usage),
        )
        if request.dry_run:
            return outcome
        # The status before the review: a forge failure on it used to come after the review was
        # posted, and the queue's retry (history not yet written) posted the review, and paid the
        # model, twice (closes: REDTEAM F83). A failure on the review itself leaves the status
        # right for the findings while the retry posts it.
        await self._host.set_commit_status(request.repo, request.head_sha, prepared.status)
        review_id = await self._post(request, prepared)
        try:
            self._remember(request, prepared, outcome)
        except StoreError:
            # Posted is posted: failing the job now would put `error` over the status just set
            # (closes: REDTEAM F84). Unrecorded, the next review diffs from an older head.
            _log.warning(
                "review_run_not_recorded", repo=request.repo.full_name, number=request.number
            )
        return replace(outcome, review_id=review_id)

    async def _post(self, request: ReviewRequest, prepared: PreparedReview) -> int:
        """Post the review, unless an earlier attempt of this job did (REDTEAM F87)."""
        if request.run is not None:
            posted = await find_posted(
                self._host,
                request.repo,
                request.number,
                head_sha=request.head_sha,
                run=request.run,
                bot_login=self._options.bot_login,
            )
            if posted is not None:
                _log.info("review_already_posted", review_id=posted, run=request.run)
                return posted
        review_id, _inline = await post_review(
            self._host,
            request.repo,
            request.number,
            head_sha=request.head_sha,
            event=prepared.event,
            report=prepared.report,
            anchored=prepared.anchored,
        )
        return review_id

    def _remember(
        self, request: ReviewRequest, prepared: PreparedReview, outcome: ReviewOutcome
    ) -> None:
        if self._history is None:
            return
        posted = [
            PostedFinding(
                f.fingerprint,
                f.path,
                f.anchor or f.line_start,
                f.severity.value,
                f.message,
                f.evidence,
                request.head_sha,
            )
            for f in prepared.findings
        ]
        self._history.record_findings(request.repo, request.number, posted)
        self._history.record_run(
            ReviewRun(
                request.repo,
                request.number,
                request.head_sha,
                # Not "posted" (the last reviewed head): an unbound review may have missed files.
                "posted" if prepared.bound else "unbound",
                prepared.event.value,
                outcome.errors,
                outcome.warnings,
                outcome.notes,
                outcome.prompt_tokens,
                outcome.completion_tokens,
                outcome.cost_usd,
            )
        )


def _usage_by_tier(usage: UsageTotals | None) -> tuple[TierUsage, ...]:
    """Per-tier sums of a review's model usage, for metrics by tier."""
    if usage is None:
        return ()
    sums: dict[str, TierUsage] = {}
    for e in usage.entries:
        tier = str(e.tier)
        old = sums.get(tier, TierUsage(tier, 0, 0, 0.0))
        sums[tier] = TierUsage(
            tier,
            old.prompt_tokens + e.prompt_tokens,
            old.completion_tokens + e.completion_tokens,
            old.cost_usd + e.cost_usd,
        )
    return tuple(sums.values())


def _log_refusals(pr: PullRequest, refusals: tuple[Refusal, ...], *, cloned: bool) -> None:
    """One warning per clone the egress proxy refused something (a clone that succeeded all
    the same may be a subverted git probing for a way out)."""
    if refusals:
        _log.warning(
            "clone_egress_refused",
            repo=pr.repo.full_name,
            number=pr.number,
            clone="succeeded" if cloned else "failed",
            count=len(refusals),
            refused=[
                {"status": r.status, "reason": r.reason, "destination": r.destination}
                for r in refusals[:_LOGGED_REFUSALS]
            ],
        )

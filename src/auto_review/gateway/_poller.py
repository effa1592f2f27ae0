"""The chat poller: a backstop for mentions the forge did not deliver by webhook.

Every interval it lists the issue comments *and* the review comments of each open PR the bot has
seen, and queues a chat job for each new comment that mentions the bot. Cursors (highest id
looked at, per PR and comment kind) live in SQLite, so a restart neither replays history nor
drops mentions made while the gateway was down. The first poll of a PR only seeds its cursors,
past its history, unless the gateway saw the PR opened (then every comment on it is new); a
mention on a PR first seen later, made before that first poll, is not replayed.
Mentions go to the job queue, whose unique (kind, comment id) key makes the webhook and the
poller agree: a comment becomes at most one job. Closed PRs stop being polled.

It is also the backstop for pushes: re-reading a PR (every ``refresh_every_secs``, and for every
PR in the first cycle after a start, when pushes made while the gateway was down are likeliest)
it compares the forge's head with the last head recorded for it (PR events and CI calls record
it, in the database). A different head is a push whose webhook never came,
handled as that ``synchronized`` delivery would have been (``Intake.missed_push``); the review
queue coalesces it with the webhook's job if both arrive, and the pipeline skips a head already
reviewed, so a push gets one review either way. A head some review job already ended on (a
chat ``@bot review`` does not record the PR's head) is left alone. A PR whose head was never
recorded (first seen through a mention) has no known head to differ from, and only gets it
recorded.

A comment edited since it was written is not acted on, like the webhook, which ignores
``edited`` events: the bot credits a command to the comment's author, and Forgejo lets anyone
with write access edit other people's comments, so edited text may speak for someone who never
wrote it (a writer could turn an approver's remark into that approver's override). The forge's
timestamps have one-second resolution, so an edit within the second of the comment's creation
goes unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from auto_review.errors import HostError, HostNotFound, StoreError
from auto_review.gateway._events import mentions
from auto_review.gateway._intake import Intake
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.hosts import Comment, CommentKind, PullRequest, ReviewHost
from auto_review.jobs import ChatRequest, Clock, PrTracker, ReviewHistory, TrackedPr
from auto_review.logs import get_logger

__all__ = ["ChatPoller"]

_CALL_TIMEOUT_SECS = 30.0
_HEADS_CHECKED = 20  # latest review outcomes of a PR looked at for its head
_log = get_logger("gateway.poller")


class ChatPoller:
    """Polls open tracked PRs for mentions; ``run`` loops until ``stop`` is set."""

    def __init__(
        self,
        *,
        host: ReviewHost,
        tracker: PrTracker,
        history: ReviewHistory,
        intake: Intake,
        metrics: GatewayMetrics,
        clock: Clock,
        bot_login: str,
        mention_name: str,
        interval_secs: float,
        refresh_every_secs: float = 600.0,
    ) -> None:
        self._host = host
        self._tracker = tracker
        self._history = history
        self._intake = intake
        self._metrics = metrics
        self._clock = clock
        self._bot = bot_login.lower()
        self._mention = mention_name
        self._interval = interval_secs
        self._refresh = refresh_every_secs
        self._caught_up = False  # whether a cycle since the start has re-read every PR

    @property
    def enabled(self) -> bool:
        return self._interval > 0

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every interval (the first cycle one interval after start) until ``stop``."""
        if not self.enabled:
            return
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
            if stop.is_set():
                return
            try:
                await self.run_once()
            except (StoreError, HostError):
                self._metrics.poller_failures.labels(scope="cycle").inc()
                _log.warning("poll_cycle_failed")
            except Exception:
                # A bug must not stop polling for the life of the process; it is logged loudly.
                self._metrics.poller_failures.labels(scope="cycle").inc()
                _log.exception("poll_cycle_crashed")

    async def run_once(self) -> int:
        """One cycle over every open tracked PR; returns the number of mentions queued."""
        queued = 0
        refresh_all = not self._caught_up
        for pr in self._tracker.open_prs():
            try:
                async with asyncio.timeout(_CALL_TIMEOUT_SECS * 4):
                    queued += await self._poll_pr(pr, refresh=refresh_all)
            except HostNotFound:
                self._tracker.observe(pr.repo, pr.number, head_sha=None, is_open=False)
            except (HostError, TimeoutError):
                self._metrics.poller_failures.labels(scope="pr").inc()
                _log.warning("poll_pr_failed", repo=str(pr.repo), number=pr.number)
        self._caught_up = True
        self._metrics.poller_cycles.inc()
        return queued

    async def _poll_pr(self, pr: TrackedPr, *, refresh: bool) -> int:
        if refresh or self._clock.time() - pr.refreshed_at >= self._refresh:
            fresh = await self._host.get_pull_request(pr.repo, pr.number)
            # Read again, not from the cycle's list: a webhook may have recorded the head since.
            known = self._tracker.get(pr.repo, pr.number)
            self._tracker.observe(
                pr.repo,
                pr.number,
                head_sha=fresh.head_sha,
                is_open=fresh.is_open,
                draft=fresh.draft,
            )
            if not fresh.is_open:
                return 0
            last_head = known.head_sha if known is not None else None
            if last_head not in (None, fresh.head_sha) and not self._had_review(fresh):
                # closes: REDTEAM F88 (a push whose webhook was lost was never reviewed)
                queued_review = await self._intake.missed_push(fresh)
                _log.info(
                    "missed_push_queued" if queued_review else "missed_push_seen",
                    repo=str(pr.repo),
                    number=pr.number,
                    head=fresh.head_sha,
                    last_head=last_head,
                )
        queued = 0
        for kind in (CommentKind.ISSUE, CommentKind.REVIEW):
            if kind is CommentKind.ISSUE:
                comments = await self._host.list_issue_comments(pr.repo, pr.number)
            else:
                comments = await self._host.list_review_comments(pr.repo, pr.number)
            queued += await self._scan(pr, kind, comments)
        return queued

    def _had_review(self, pr: PullRequest) -> bool:
        """Whether a review job of ``pr``'s head ended: a chat ``@bot review`` reviews the head
        without recording it as the PR's, and must not be followed by an automatic one."""
        recent = self._history.list(repo=pr.repo, number=pr.number, limit=_HEADS_CHECKED)
        return any(entry.head_sha == pr.head_sha for entry in recent)

    async def _scan(self, pr: TrackedPr, kind: CommentKind, comments: list[Comment]) -> int:
        cursor = pr.cursor(kind)
        top = max((c.id for c in comments), default=cursor or 0)
        if cursor is None:
            # First sight: remember where history ends; old mentions are not replayed.
            self._tracker.advance_cursor(pr.repo, pr.number, kind, top)
            return 0
        queued = 0
        for comment in sorted(comments, key=lambda c: c.id):
            if comment.id <= cursor or comment.author_login.lower() == self._bot:
                continue
            if not mentions(comment.body, self._mention):
                continue
            if _edited(comment):
                _log.info(
                    "poll_skipped_edited_mention",
                    repo=str(pr.repo),
                    number=pr.number,
                    comment=comment.id,
                    author=comment.author_login,
                )
                continue
            request = ChatRequest(
                repo=pr.repo,
                number=pr.number,
                comment_id=comment.id,
                author=comment.author_login,
                body=comment.body,
                kind=kind,
            )
            if await self._intake.enqueue_chat(request, source="poller"):
                self._metrics.poller_mentions.inc()
                queued += 1
        # Advanced only after the jobs are queued: a crash in between re-queues (deduplicated).
        self._tracker.advance_cursor(pr.repo, pr.number, kind, top)
        return queued


def _edited(comment: Comment) -> bool:
    """True when the forge says ``comment`` changed after it was created.

    Unknown timestamps (a forge that omits them) count as unedited: the poller would otherwise
    stop working there. Timestamps that do not parse but differ count as edited.
    """
    if not comment.created_at or not comment.updated_at:
        return False
    try:
        return datetime.fromisoformat(comment.updated_at) > datetime.fromisoformat(
            comment.created_at
        )
    except (ValueError, TypeError):  # TypeError: one with a time zone, one without
        return comment.updated_at != comment.created_at

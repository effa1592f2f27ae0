"""What accepted events do: record PR state, queue reviews and chat jobs, cancel closed work.

Shared by the webhook route, the CI route and the chat poller, so the three cannot disagree on
what a PR event or a mention means. Nothing here runs a review or a chat handler: work goes to
the job queue and the workers are woken.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from auto_review.chat import MAX_COMMENT_CHARS, ChatConfig, ChatLedger, check_rate
from auto_review.errors import HostAuthError, HostError, HostNotFound, HostUnavailable
from auto_review.gateway._batch import ChatBatcher
from auto_review.gateway._context import ReviewMode, ReviewModeResolver
from auto_review.gateway._events import CommentEvent, PullRequestEvent
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.hosts import (
    CommentKind,
    CommitState,
    CommitStatus,
    HeadSha,
    Permission,
    PullRequest,
    RepoRef,
    ReviewHost,
)
from auto_review.jobs import ChatRequest, EnqueueResult, JobQueue, PrTracker
from auto_review.logs import get_logger
from auto_review.review import Trigger

__all__ = ["REVIEW_ACTIONS", "Intake"]

# PR actions that mean "there is (new) code to review".
REVIEW_ACTIONS = frozenset({"opened", "reopened", "synchronized", "ready_for_review"})
_FORGE_TIMEOUT_SECS = 10.0
_KNOWN_PRS_CACHED = 10_000
_log = get_logger("gateway.intake")


class Intake:
    """Turns accepted events into queue entries and PR records."""

    def __init__(
        self,
        *,
        queue: JobQueue,
        tracker: PrTracker,
        host: ReviewHost,
        metrics: GatewayMetrics,
        notify: Callable[[], None],
        review_mode: ReviewMode,
        mode_resolver: ReviewModeResolver | None,
        status_context: str,
        bot_login: str,
        chat_ledger: ChatLedger,
        chat_config: ChatConfig,
    ) -> None:
        self._queue = queue
        self._tracker = tracker
        self._host = host
        self._metrics = metrics
        self._notify = notify
        self._mode = review_mode
        self._resolver = mode_resolver
        self._context = status_context
        self._bot = bot_login.lower()
        self._ledger = chat_ledger
        self._chat_config = chat_config
        self._chats = ChatBatcher(queue)
        # PRs known to be tracked, so a busy PR's mentions cost no database read each.
        self._known: OrderedDict[tuple[RepoRef, int], None] = OrderedDict()

    async def pull_request(self, ev: PullRequestEvent) -> bool:
        """Handle a PR event; True when it changed queued work or statuses."""
        before = self._tracker.get(ev.repo, ev.number)
        self._tracker.observe(
            ev.repo,
            ev.number,
            head_sha=ev.head_sha,
            is_open=ev.is_open,
            draft=ev.draft,
            # A PR just opened has no history for the poller to skip: its first poll takes every
            # mention whose webhook was lost, where seeding skipped them (closes: REDTEAM F86).
            new_cursor=0 if ev.action == "opened" else None,
        )
        if not ev.is_open:
            cancelled = self._queue.cancel_pr(ev.repo, ev.number, reason="pull request closed")
            _log.info("pr_closed", repo=str(ev.repo), number=ev.number, cancelled=cancelled)
            return True
        # A new head makes queued reviews of older heads pointless, in either mode.
        self._queue.supersede_older(ev.repo, ev.number, ev.head_sha)
        if ev.draft:
            return False
        if ev.action == "review_requested":
            return await self._requested(ev)
        if ev.action == "edited" and before is not None and before.draft:
            # Forgejo marks a draft ready by editing its title ("edited", no event of its own).
            # The draft's head got no review and no green status (F73) and CI, refused while it
            # was a draft, does not run again: queue it in either mode; a reviewed head is
            # skipped by the pipeline.
            self.enqueue_review(ev.repo, ev.number, ev.head_sha, trigger=Trigger.WEBHOOK)
            return True
        if ev.action not in REVIEW_ACTIONS:
            return False
        if await self._mode_for(ev.repo, ev.base_sha) == "direct":
            self.enqueue_review(ev.repo, ev.number, ev.head_sha, trigger=Trigger.WEBHOOK)
            return True
        await self._set_waiting_status(ev.repo, ev.head_sha)
        return True

    async def _requested(self, ev: PullRequestEvent) -> bool:
        """The bot's review was requested: an explicit ask, like ``@bot review``, so it runs in
        either review mode, while automatic reviews are paused, and again for a reviewed head;
        and like that command it needs the asker's write access and counts against chat's
        hourly limits (otherwise requesting, removing and requesting again would be an unmetered
        ``@bot review``). Refused requests are logged only: there is no comment to answer."""
        if ev.requested_reviewer.lower() != self._bot:
            return False
        permission = await self._permission(ev.repo, ev.sender)
        if permission is None or not permission.can_write:
            # Forgejo lets a PR's author request reviewers; a drive-by author must not buy
            # forced reviews with it.
            _log.info(
                "review_request_refused",
                repo=str(ev.repo),
                number=ev.number,
                requester=ev.sender,
                permission=permission.value if permission else "unknown",
            )
            return False
        decision = check_rate(self._ledger, self._chat_config, ev.repo, ev.number, ev.sender)
        if not decision.allowed:
            _log.info(
                "review_request_rate_limited",
                repo=str(ev.repo),
                number=ev.number,
                requester=ev.sender,
                scope=decision.scope,
            )
            return False
        self._ledger.record_usage(ev.repo, ev.number, ev.sender, "review-request")
        self.enqueue_review(ev.repo, ev.number, ev.head_sha, trigger=Trigger.REQUEST, force=True)
        return True

    async def _permission(self, repo: RepoRef, login: str) -> Permission | None:
        """``login``'s access; None when the forge will not tell (the bot is no repo admin)."""
        if not login:
            return Permission.NONE
        try:
            async with asyncio.timeout(_FORGE_TIMEOUT_SECS):
                return await self._host.get_permission(repo, login)
        except HostNotFound:
            return Permission.NONE
        except HostAuthError:
            return None
        except TimeoutError as exc:
            raise HostUnavailable("the forge did not answer a permission check in time") from exc

    def enqueue_review(
        self,
        repo: RepoRef,
        number: int,
        head_sha: HeadSha,
        *,
        trigger: Trigger,
        force: bool = False,
        source: str | None = None,
    ) -> EnqueueResult:
        """Queue a review; ``source`` labels the metric when it is not the trigger's name."""
        self._tracker.observe(repo, number, head_sha=head_sha, is_open=True)
        result = self._queue.enqueue_review(repo, number, head_sha, trigger=trigger, force=force)
        if result.created:
            self._metrics.count_enqueued("review", source or trigger.value)
            self._notify()
        return result

    async def missed_push(self, pr: PullRequest) -> bool:
        """The poller found ``pr`` at a head no event told us of: do what a ``synchronized``
        delivery would have done, as that trigger (pause and drafts apply, nothing forced);
        True when a review was queued. In ``ci`` mode CI asks for the review, so nothing is
        queued, and no "waiting" status is set: CI may have asked already."""
        self._queue.supersede_older(pr.repo, pr.number, pr.head_sha)
        if pr.draft or await self._mode_for(pr.repo, pr.base_sha) != "direct":
            return False
        result = self.enqueue_review(
            pr.repo, pr.number, pr.head_sha, trigger=Trigger.WEBHOOK, source="poller"
        )
        return result.created

    async def mention(self, ev: CommentEvent) -> bool:
        """Queue a chat job for a comment that mentions the bot; False if it cannot be found."""
        comment_id = ev.comment_id
        if comment_id is None:
            try:
                async with asyncio.timeout(_FORGE_TIMEOUT_SECS):
                    comment_id = await self._find_review_comment(ev)
            except TimeoutError as exc:
                raise HostUnavailable("the forge did not list review comments in time") from exc
            if comment_id is None:
                _log.info("mention_without_comment_id", repo=str(ev.repo), number=ev.number)
                return False
        self._track_once(ev.repo, ev.number)
        return await self.enqueue_chat(
            ChatRequest(
                repo=ev.repo,
                number=ev.number,
                comment_id=comment_id,
                author=ev.author,
                body=ev.body,
                kind=ev.kind,
            ),
            source="webhook",
        )

    async def enqueue_chat(self, request: ChatRequest, *, source: str) -> bool:
        """Queue a chat job; False when this comment already has one (webhook vs poller)."""
        result = await self._chats.enqueue(request)
        if result.created:
            self._metrics.count_enqueued("chat", source)
            self._notify()
        return result.created

    def _track_once(self, repo: RepoRef, number: int) -> None:
        """A PR first seen through a mention is polled from now on (until found closed)."""
        key = (repo, number)
        if key in self._known:
            self._known.move_to_end(key)
            return
        if self._tracker.get(repo, number) is None:
            self._tracker.observe(repo, number, head_sha=None, is_open=True)
        self._known[key] = None
        if len(self._known) > _KNOWN_PRS_CACHED:
            self._known.popitem(last=False)

    async def _find_review_comment(self, ev: CommentEvent) -> int | None:
        # Forgejo's review-comment hook carries the text but no comment id; the id is what
        # makes webhook and poller agree, so look the comment up by author and text.
        comments = await self._host.list_review_comments(ev.repo, ev.number)
        matches = [
            c.id
            for c in comments
            if c.kind is CommentKind.REVIEW
            and c.author_login.lower() == ev.author.lower()
            and c.body[:MAX_COMMENT_CHARS].strip() == ev.body.strip()  # as delivered (F63)
        ]
        return max(matches) if matches else None

    async def _mode_for(self, repo: RepoRef, base_sha: str | None) -> ReviewMode:
        if self._resolver is None or base_sha is None:
            return self._mode
        try:
            async with asyncio.timeout(_FORGE_TIMEOUT_SECS):
                mode = await self._resolver(repo, base_sha)
        except (HostError, TimeoutError):
            _log.warning("review_mode_lookup_failed", repo=str(repo))
            return self._mode
        return mode or self._mode

    async def _set_waiting_status(self, repo: RepoRef, head_sha: HeadSha) -> None:
        status = CommitStatus(
            context=self._context,
            state=CommitState.PENDING,
            description="waiting for CI to request a review",
        )
        try:
            async with asyncio.timeout(_FORGE_TIMEOUT_SECS):
                await self._host.set_commit_status(repo, head_sha, status)
        except (HostError, TimeoutError):
            # The PR state is recorded; a missing "waiting" status is cosmetic, not worth a
            # redelivery that would repeat everything above.
            _log.warning("waiting_status_not_set", repo=str(repo))

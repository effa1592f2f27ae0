"""``ChatService``: answers one mention of the bot; the job queue's ``ChatRunner`` for chat jobs.

For each comment, in order:
1. comments by the bot itself, listed bot accounts and ``*[bot]`` / ``*-bot`` logins are ignored
   (no bot-to-bot loops);
2. the body is parsed; every command line is one command (at most ``MAX_COMMANDS``);
3. the comment is read again from the forge: one deleted since it was queued is not answered,
   nor one whose commands were edited meanwhile (edits are never acted on: the gateway ignores
   them, see ``gateway._poller``); either ends the job as skipped;
4. each command is claimed in the ledger under (repo, comment kind, comment id, index): a
   redelivered or re-polled comment finds its claim and is not answered again;
5. write-level commands need write access (cached ``get_permission``); a refused user is told
   once per PR, then ignored; model-spending commands are rate limited per user and per PR, and
   the commands anyone may run (help, config, learnings, unknown words) by limits of their own;
6. the handler runs; its reply goes where the command was written: a PR conversation comment
   gets an issue comment, a review-thread comment gets a review comment on the same path and
   line (Forgejo groups those into the same conversation; there is no reply-to-comment API),
   falling back to a PR comment that quotes and links the thread if the line cannot take one.
If handling fails before anything was posted the claim is released, so the queue's retry of
the job answers it; once something was posted the claim is kept and nothing is repeated. A
claim left behind by a killed process is retaken by the next one (see ``ChatLedger``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable

from auto_review.chat._access import (
    FREE_COMMANDS,
    MODEL_COMMANDS,
    WRITE_COMMANDS,
    PermissionCache,
    RateDecision,
    check_rate,
)
from auto_review.chat._assist import handle_ask, handle_explain
from auto_review.chat._commands import (
    handle_config,
    handle_forget,
    handle_help,
    handle_learnings,
    handle_pause,
    handle_remember,
    handle_review,
    handle_unknown,
)
from auto_review.chat._context import ChatDeps, Turn
from auto_review.chat._ledger import ChatLedger, ReplyKey, UsageTier
from auto_review.chat._override import handle_approve
from auto_review.chat._parser import MAX_COMMANDS, CommandKind, ParsedComment, parse_comment
from auto_review.chat._ports import ChatConfig, ChatMention, ReviewQueue
from auto_review.chat._replies import Turnout, quote
from auto_review.chat._suggest import handle_suggestions
from auto_review.errors import HostError, HostNotFound
from auto_review.hosts import Comment, CommentKind, InlineComment, ReviewEvent, ReviewHost
from auto_review.llm import LLMClient
from auto_review.logs import get_logger
from auto_review.memory import LearningsStore
from auto_review.review.defang import code_span, defang
from auto_review.store import Store

__all__ = ["ChatService", "reply_marker"]

_log = get_logger("chat")

Handler = Callable[[ChatDeps, Turn], Awaitable[Turnout]]

_HANDLERS: dict[CommandKind, Handler] = {
    CommandKind.HELP: handle_help,
    CommandKind.UNKNOWN: handle_unknown,
    CommandKind.REVIEW: handle_review,
    CommandKind.FULL_REVIEW: handle_review,
    CommandKind.PAUSE: handle_pause,
    CommandKind.RESUME: handle_pause,
    CommandKind.ASK: handle_ask,
    CommandKind.EXPLAIN: handle_explain,
    CommandKind.REMEMBER: handle_remember,
    CommandKind.FORGET: handle_forget,
    CommandKind.LEARNINGS: handle_learnings,
    CommandKind.AUTOFIX: handle_suggestions,
    CommandKind.DOCSTRING: handle_suggestions,
    CommandKind.TESTS: handle_suggestions,
    CommandKind.CONFIG: handle_config,
    CommandKind.APPROVE: handle_approve,
}


def reply_marker(kind: CommentKind, comment_id: int, index: int) -> str:
    """The hidden line every reply carries: which comment (and command) it answers."""
    return f"<!-- auto-review:chat-reply to={kind.value}:{comment_id}:{index} -->"


class ChatService:
    """Answers chat mentions. ``run`` has the shape of ``jobs.ChatRunner.run``."""

    def __init__(
        self,
        *,
        host: ReviewHost,
        store: Store,
        config: ChatConfig,
        queue: ReviewQueue | None = None,
        llm: LLMClient | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deps = ChatDeps(
            host=host,
            store=store,
            config=config,
            ledger=ChatLedger(store, clock=clock),
            learnings=LearningsStore(store, clock=clock),
            queue=queue,
            llm=llm,
        )
        self._permissions = PermissionCache(
            host, ttl_secs=config.permission_ttl_secs, clock=monotonic
        )

    @property
    def ledger(self) -> ChatLedger:
        return self._deps.ledger

    async def run(self, request: ChatMention) -> str | None:
        """Answer every command in ``request`` once; raises ``HostError``/``LLMError``.

        Returns why nothing was done when the comment was deleted or its commands changed
        since it was queued (the job ends skipped), else None.
        """
        deps = self._deps
        if deps.config.is_bot(request.author):
            _log.info("chat.ignored_bot_author", repo=str(request.repo), author=request.author)
            return None
        parsed = parse_comment(request.body, deps.config.mention_name)
        if not parsed.mentioned:
            return None
        keys = [
            ReplyKey(request.repo, request.kind, request.comment_id, index)
            for index in range(len(parsed.commands))
        ]
        if all(deps.ledger.settled(key) for key in keys):
            _log.info("chat.already_answered", repo=str(request.repo), comment=request.comment_id)
            return None  # a redelivery: not even the forge is asked again
        # closes: a command deleted (or edited into another) after it was queued was still
        # answered, spending the model and posting on the deleted comment's behalf.
        comment = await self._current(request)
        if comment is None:
            _log.info(
                "chat.skipped_deleted_comment",
                repo=str(request.repo),
                number=request.number,
                comment=request.comment_id,
            )
            return "the comment was deleted before it was answered"
        if _said(parse_comment(comment.body, deps.config.mention_name)) != _said(parsed):
            _log.info(
                "chat.skipped_changed_comment",
                repo=str(request.repo),
                number=request.number,
                comment=request.comment_id,
            )
            return "the comment's commands were edited before it was answered"
        pr = await deps.host.get_pull_request(request.repo, request.number)
        for index, (command, key) in enumerate(zip(parsed.commands, keys, strict=True)):
            claimed = deps.ledger.claim(
                key, number=request.number, author=request.author, command=command.kind.value
            )
            if not claimed:
                _log.info("chat.already_answered", repo=str(request.repo), comment=key.comment_id)
                continue
            turn = Turn(request.repo, pr, request.author, command, comment)
            posted: list[str] = []
            try:
                turnout = await self._gate(turn)
                if turnout is not None and index == 0 and parsed.dropped:
                    turnout = dataclasses.replace(
                        turnout,
                        text=f"{turnout.text}\n\n(I act on at most {MAX_COMMANDS} commands per "
                        f"comment; {parsed.dropped} more were ignored.)",
                    )
                if turnout is not None:
                    await self._post(turn, turnout, key, posted)
            except BaseException:
                if posted:
                    deps.ledger.finish(key, reply_ref=",".join(posted))
                else:
                    deps.ledger.release(key)
                raise
            deps.ledger.finish(key, reply_ref=",".join(posted) or "none")
            _log.info(
                "chat.answered",
                repo=str(request.repo),
                number=request.number,
                command=command.kind.value,
                replies=len(posted),
            )
        return None

    async def _current(self, request: ChatMention) -> Comment | None:
        """The mention as the forge holds it now (a review comment with its path and line);
        None once it is deleted. Other forge errors propagate: the queue retries transient
        ones, so a command is not lost to a forge hiccup."""
        host = self._deps.host
        try:
            if request.kind is CommentKind.ISSUE:
                return await host.get_issue_comment(request.repo, request.comment_id)
            # The forge API has no call for one review comment: it is looked up in the listing.
            for found in await host.list_review_comments(request.repo, request.number):
                if found.id == request.comment_id:
                    return found
        except HostNotFound:
            return None
        return None

    async def _gate(self, turn: Turn) -> Turnout | None:
        """Permission and rate checks, then the handler; None when nothing should be said."""
        deps, kind = self._deps, turn.command.kind
        if kind in WRITE_COMMANDS:
            permission = await self._permissions.get(turn.repo, turn.author)
            if permission is None:
                _log.warning("chat.permission_unknown", repo=str(turn.repo))
                if deps.ledger.notice_once(turn.repo, turn.pr.number, "*", "permission-unknown"):
                    return Turnout(_UNVERIFIED_TEXT)
                return None
            if not permission.can_write:
                _log.info("chat.refused_permission", repo=str(turn.repo), author=turn.author)
                # closes: the refusal as a post anyone can cause, one per account and PR (F62):
                # it counts as a free command, and past those limits it is not said.
                if not check_rate(
                    deps.ledger, deps.config, turn.repo, turn.pr.number, turn.author, tier="free"
                ).allowed:
                    return None
                if deps.ledger.notice_once(turn.repo, turn.pr.number, turn.author, "permission"):
                    deps.ledger.record_usage(
                        turn.repo, turn.pr.number, turn.author, kind.value, tier="free"
                    )
                    return Turnout(_permission_text(turn, deps.config.mention_name))
                return None
        # closes: help, config, learnings and unknown words need no write access and spend no
        # model budget, yet each makes the bot post a comment; unlimited, anyone could make it
        # flood a PR. They have limits of their own, counted apart from the model's.
        tier: UsageTier | None = (
            "model" if kind in MODEL_COMMANDS else "free" if kind in FREE_COMMANDS else None
        )
        if tier is not None:
            number = turn.pr.number
            decision = check_rate(
                deps.ledger, deps.config, turn.repo, number, turn.author, tier=tier
            )
            if not decision.allowed:
                _log.info("chat.rate_limited", repo=str(turn.repo), scope=decision.scope, tier=tier)
                # Said at most once an hour per limit: a user's to that user on this PR, the PR's
                # on the PR to whoever reaches it first; further refusals are silent, so the
                # notice cannot become the flood the limit stops.
                # closes: one PR-limit notice per account and hour, a post per account (F62)
                notice = f"rate-{decision.scope}" if tier == "model" else f"free-{decision.scope}"
                told = turn.author if decision.scope == "user" else "*"
                if deps.ledger.notice_once(turn.repo, number, told, notice, hourly=True):
                    return Turnout(_rate_text(decision, tier, deps))
                return None
            deps.ledger.record_usage(turn.repo, number, turn.author, kind.value, tier=tier)
        return await _HANDLERS[kind](deps, turn)

    async def _post(self, turn: Turn, turnout: Turnout, key: ReplyKey, posted: list[str]) -> None:
        host, pr = self._deps.host, turn.pr
        if turnout.review is not None:
            review_id = await host.create_review(
                turn.repo,
                pr.number,
                commit_id=pr.head_sha,
                body=turnout.review.body,
                event=turnout.review.event,
                comments=turnout.review.comments,
            )
            posted.append(f"review:{review_id}")
            if turnout.on_review_posted is not None:
                turnout.on_review_posted(review_id)
        text = (
            f"{turnout.text}\n\n{reply_marker(key.comment_kind, key.comment_id, key.command_index)}"
        )
        comment = turn.comment
        if comment.path is not None and comment.line is not None:
            try:
                thread_id = await host.create_review(
                    turn.repo,
                    pr.number,
                    commit_id=pr.head_sha,
                    body="",
                    event=ReviewEvent.COMMENT,
                    comments=(InlineComment(comment.path, text, new_line=comment.line),),
                )
                posted.append(f"thread-review:{thread_id}")
                return
            except HostError as exc:
                if exc.transient:
                    raise
                # The line is outdated or not commentable any more: answer on the PR instead.
                _log.info("chat.thread_reply_fallback", repo=str(turn.repo), status=exc.status)
            # The bot relays what anyone wrote in the thread (and the file's name) in its own
            # name, as a writer: defanged, or the quote could close issues or ping teams.
            text = (
                f"In reply to {turn.author} on {code_span(comment.path)} line {comment.line} "
                f"({pr.html_url}/files#issuecomment-{comment.id}):\n"
                f"{defang(quote(comment.body, limit=300))}\n\n{text}"
            )
        created = await host.create_issue_comment(turn.repo, pr.number, text)
        posted.append(f"comment:{created.id}")


_UNVERIFIED_TEXT = (
    "I cannot check who has write access to this repository: the forge only tells repository "
    "admins. Until an operator gives the bot account admin access here, commands that use the "
    "model or change state are disabled on this repository; `help`, `config` and `learnings` "
    "still work."
)


def _permission_text(turn: Turn, mention: str) -> str:
    return (
        f"Sorry {turn.author}, `{turn.command.kind.value}` needs write access to this "
        "repository, and you do not have it here. Commands anyone can use: "
        f"`@{mention} help`, `@{mention} config`, `@{mention} learnings`. (I will not repeat "
        "this notice on this pull request.)"
    )


def _said(parsed: ParsedComment) -> list[tuple[CommandKind, str]]:
    """What a comment asks for; where the command lines sit does not matter."""
    return [(command.kind, command.argument) for command in parsed.commands]


def _rate_text(decision: RateDecision, tier: UsageTier, deps: ChatDeps) -> str:
    config = deps.config
    if tier == "model":
        kinds = "model-using commands"
        per_user, per_pr = config.user_rate_per_hour, config.pr_rate_per_hour
    else:
        kinds = "`help`, `config` and `learnings` commands"
        per_user, per_pr = config.free_user_rate_per_hour, config.free_pr_rate_per_hour
    if decision.scope == "user":
        limit = f"{per_user} {kinds} per user per hour"
    else:
        limit = f"{per_pr} {kinds} per pull request per hour"
    return (
        f"The chat limit is {limit}; it was reached. Please try again in about "
        f"{decision.retry_in_minutes} min."
    )

"""What chat needs from the layers around it, as narrow protocols, plus its configuration slice.

The gateway wires real objects in: ``jobs.ChatRequest`` satisfies ``ChatMention``,
and ``jobs.SqliteJobQueue`` satisfies ``ReviewQueue``. Chat imports neither, so the dependency
direction (jobs -> chat) holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from auto_review.hosts import CommentKind, HeadSha, RepoRef
from auto_review.review import Trigger
from auto_review.settings import Settings

__all__ = ["ChatConfig", "ChatMention", "Enqueued", "ReviewQueue"]


class ChatMention(Protocol):
    """One comment that mentions the bot (``jobs.ChatRequest`` has this shape)."""

    @property
    def repo(self) -> RepoRef: ...

    @property
    def number(self) -> int: ...

    @property
    def comment_id(self) -> int: ...

    @property
    def author(self) -> str: ...

    @property
    def body(self) -> str: ...

    @property
    def kind(self) -> CommentKind: ...


class Enqueued(Protocol):
    @property
    def job_id(self) -> int: ...

    @property
    def created(self) -> bool: ...


class ReviewQueue(Protocol):
    """The part of the job queue chat uses: ask for a review of one head.

    ``force`` reviews even an already reviewed head and skips the CI gate; ``full`` also ignores
    the incremental state (it reaches the pipeline as ``ReviewRequest.full``).
    """

    def enqueue_review(
        self,
        repo: RepoRef,
        number: int,
        head_sha: HeadSha,
        *,
        trigger: Trigger,
        force: bool,
        full: bool = False,
    ) -> Enqueued: ...


# Logins that are bots by convention (GitHub apps end in "[bot]", many forge bots in "-bot").
_BOT_SUFFIXES = ("[bot]", "-bot")


@dataclass(frozen=True)
class ChatConfig:
    """The settings chat reads. ``mention_name`` is what users write after ``@``."""

    bot_login: str
    mention_name: str
    user_rate_per_hour: int = 20
    pr_rate_per_hour: int = 60
    # help, config, learnings and unknown words: no model budget, but each is a posted reply.
    free_user_rate_per_hour: int = 30
    free_pr_rate_per_hour: int = 60
    ignore_logins: tuple[str, ...] = ()
    permission_ttl_secs: float = 60.0
    min_reason_words: int = 6
    min_reason_chars: int = 30
    # Gateway-wide values shown by ``@bot config`` where the repo config leaves a key unset.
    repo_defaults: tuple[tuple[str, str], ...] = (
        ("severity_floor", "warning"),
        ("review_mode", "ci"),
        ("language", "en"),
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatConfig:
        return cls(
            bot_login=settings.bot_login,
            mention_name=settings.mention_name,
            user_rate_per_hour=settings.chat_user_rate_per_hour,
            pr_rate_per_hour=settings.chat_pr_rate_per_hour,
            free_user_rate_per_hour=settings.chat_free_user_rate_per_hour,
            free_pr_rate_per_hour=settings.chat_free_pr_rate_per_hour,
            ignore_logins=tuple(
                name.strip() for name in settings.chat_ignore_logins.split(",") if name.strip()
            ),
            repo_defaults=(
                ("severity_floor", settings.severity_floor),
                ("review_mode", settings.review_mode),
                ("language", "en"),
            ),
        )

    def is_bot(self, login: str) -> bool:
        """True for the bot itself, listed accounts, and logins shaped like bot accounts."""
        name = login.strip().lower()
        if name in {self.bot_login.lower(), self.mention_name.lower()}:
            return True
        if name in {item.strip().lower() for item in self.ignore_logins}:
            return True
        return name.endswith(_BOT_SUFFIXES)

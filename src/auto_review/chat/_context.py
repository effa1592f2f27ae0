"""What every command handler receives: the service's collaborators and the command's turn."""

from __future__ import annotations

from dataclasses import dataclass

from auto_review.chat._ledger import ChatLedger
from auto_review.chat._parser import Command
from auto_review.chat._ports import ChatConfig, ReviewQueue
from auto_review.hosts import Comment, PullRequest, RepoRef, ReviewHost
from auto_review.llm import LLMClient, Tier
from auto_review.memory import LearningsStore
from auto_review.store import Store

__all__ = ["ChatDeps", "Turn", "chat_tier"]


@dataclass(frozen=True)
class ChatDeps:
    host: ReviewHost
    store: Store
    config: ChatConfig
    ledger: ChatLedger
    learnings: LearningsStore
    queue: ReviewQueue | None
    llm: LLMClient | None


@dataclass(frozen=True)
class Turn:
    """One command of one comment, on one PR, by one user (``author`` is the forge login)."""

    repo: RepoRef
    pr: PullRequest
    author: str
    command: Command
    comment: Comment  # the comment that carried it; path/line set on review-thread comments

    @property
    def thread(self) -> tuple[str, int] | None:
        """(path, line) of the review thread the command was written in; None in the PR."""
        if self.comment.path is None or self.comment.line is None:
            return None
        return self.comment.path, self.comment.line


def chat_tier(llm: LLMClient) -> Tier:
    """Chat answers with the cheap tier, or the reasoning tier when no cheap one is configured."""
    return Tier.CHEAP if llm.has_tier(Tier.CHEAP) else Tier.REASONING

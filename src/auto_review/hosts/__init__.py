"""Forge access: the ``ReviewHost`` protocol, its DTOs, and the Forgejo/Gitea adapter."""

from auto_review.hosts._models import (
    BaseSha,
    ChangedFile,
    Comment,
    CommentKind,
    CommitState,
    CommitStatus,
    HeadSha,
    InlineComment,
    Permission,
    PullRequest,
    RepoRef,
    Review,
    ReviewEvent,
    is_sha,
)
from auto_review.hosts._protocol import ReviewHost

__all__ = [
    "BaseSha",
    "ChangedFile",
    "Comment",
    "CommentKind",
    "CommitState",
    "CommitStatus",
    "HeadSha",
    "InlineComment",
    "Permission",
    "PullRequest",
    "RepoRef",
    "Review",
    "ReviewEvent",
    "ReviewHost",
    "is_sha",
]

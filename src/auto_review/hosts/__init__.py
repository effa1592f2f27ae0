"""Forge access: the ``ReviewHost`` protocol, its DTOs, and the Forgejo/Gitea adapter."""

from auto_review.hosts._admin import BOT_TOKEN_SCOPES, AccessToken, create_access_token
from auto_review.hosts._http import RetryPolicy
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
from auto_review.hosts.forgejo import ForgejoHost, WebhookInfo, forgejo_host

__all__ = [
    "BOT_TOKEN_SCOPES",
    "AccessToken",
    "BaseSha",
    "ChangedFile",
    "Comment",
    "CommentKind",
    "CommitState",
    "CommitStatus",
    "ForgejoHost",
    "HeadSha",
    "InlineComment",
    "Permission",
    "PullRequest",
    "RepoRef",
    "RetryPolicy",
    "Review",
    "ReviewEvent",
    "ReviewHost",
    "WebhookInfo",
    "create_access_token",
    "forgejo_host",
    "is_sha",
]

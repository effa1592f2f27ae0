"""Data passed between a forge adapter and the rest of auto-review: frozen, forge-neutral."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

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
    "is_sha",
]

HeadSha = NewType("HeadSha", str)
BaseSha = NewType("BaseSha", str)

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
# Owner and repository names as Forgejo allows them; checked before they reach a URL path.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def is_sha(value: str) -> bool:
    """True for a full lowercase SHA-1 or SHA-256 object id (never an option or a ref name)."""
    # closes: a SHA with a final newline passing as an object id (``$`` matches before it).
    return bool(_SHA.fullmatch(value))


@dataclass(frozen=True, order=True)
class RepoRef:
    """``owner/name`` of a repository; construction refuses unsafe path segments."""

    owner: str
    name: str

    def __post_init__(self) -> None:
        for part in (self.owner, self.name):
            if not _NAME.fullmatch(part) or part in {".", ".."}:
                raise ValueError("unsafe owner/repo path segment")

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.full_name

    @classmethod
    def parse(cls, text: str) -> RepoRef:
        owner, sep, name = text.partition("/")
        if not sep:
            raise ValueError("expected OWNER/REPO")
        return cls(owner, name)


class ReviewEvent(StrEnum):
    COMMENT = "COMMENT"
    REQUEST_CHANGES = "REQUEST_CHANGES"
    APPROVED = "APPROVED"


class CommitState(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


class Permission(StrEnum):
    NONE = "none"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def can_write(self) -> bool:
        return self in (Permission.WRITE, Permission.ADMIN, Permission.OWNER)


class CommentKind(StrEnum):
    ISSUE = "issue"  # PR conversation comment
    REVIEW = "review"  # inline comment in a review thread


@dataclass(frozen=True)
class PullRequest:
    repo: RepoRef
    number: int
    title: str
    body: str
    author_login: str
    state: str  # "open" or "closed"
    draft: bool
    merged: bool
    head_sha: HeadSha
    base_sha: BaseSha
    head_ref: str
    base_ref: str
    html_url: str
    # Where the forge's diff of the PR starts: a full SHA, or None when it gives none.
    merge_base: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state.lower() == "open"


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: str  # added | modified | removed | renamed
    additions: int
    deletions: int
    previous_path: str | None = None


@dataclass(frozen=True)
class Comment:
    id: int
    kind: CommentKind
    author_login: str
    body: str
    created_at: str
    path: str | None = None
    line: int | None = None
    review_id: int | None = None
    # Later than ``created_at`` once the text was edited (by its author, or by anyone with write
    # access: Forgejo lets writers edit other people's comments). Empty when the forge omits it.
    updated_at: str = ""


@dataclass(frozen=True)
class Review:
    id: int
    author_login: str
    state: str
    body: str
    commit_id: str


@dataclass(frozen=True)
class InlineComment:
    """A comment anchored at a line of the new (``new_line``) or old (``old_line``) file side."""

    path: str
    body: str
    new_line: int | None = None
    old_line: int | None = None


@dataclass(frozen=True)
class CommitStatus:
    context: str
    state: CommitState
    description: str
    target_url: str | None = None

"""Records of the fake forge's state: plain mutable dataclasses tests may read directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tests.fakes.forge_git import GitRepo

__all__ = [
    "ForgeError",
    "HookRecord",
    "IssueCommentRecord",
    "PullRecord",
    "RepoRecord",
    "ReviewCommentRecord",
    "ReviewRecord",
    "StatusRecord",
    "TokenRecord",
    "UserRecord",
]


class ForgeError(Exception):
    """A request the fake refuses the way Forgejo would; carries the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class UserRecord:
    id: int
    login: str
    password: str
    full_name: str = ""
    is_admin: bool = False

    @property
    def email(self) -> str:
        return f"{self.login}@noreply.localhost"


@dataclass
class TokenRecord:
    id: int
    owner: str
    name: str
    sha1: str
    scopes: list[str]


@dataclass
class HookRecord:
    id: int
    type: str
    config: dict[str, str]
    events: list[str]
    active: bool
    created_at: datetime
    branch_filter: str = ""


@dataclass
class StatusRecord:
    id: int
    sha: str
    state: str
    context: str
    description: str
    target_url: str
    creator: str
    created_at: datetime


@dataclass
class IssueCommentRecord:
    id: int
    number: int
    user: str
    body: str
    created_at: datetime
    updated_at: datetime


@dataclass
class ReviewCommentRecord:
    id: int
    review_id: int
    path: str
    body: str
    new_line: int
    old_line: int
    commit_id: str
    diff_hunk: str
    user: str
    created_at: datetime


@dataclass
class ReviewRecord:
    id: int
    number: int
    user: str
    state: str
    body: str
    commit_id: str
    submitted_at: datetime
    comments: list[ReviewCommentRecord] = field(default_factory=list)


@dataclass
class PullRecord:
    id: int
    number: int
    user: str
    title: str
    body: str
    head_ref: str
    base_ref: str
    state: str
    created_at: datetime
    updated_at: datetime
    merged: bool = False
    closed_head_sha: str | None = None


@dataclass
class RepoRecord:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    git: GitRepo
    created_at: datetime
    collaborators: dict[str, str] = field(default_factory=dict)
    next_index: int = 1
    pulls: dict[int, PullRecord] = field(default_factory=dict)
    issue_comments: list[IssueCommentRecord] = field(default_factory=list)
    reviews: list[ReviewRecord] = field(default_factory=list)
    statuses: list[StatusRecord] = field(default_factory=list)
    hooks: list[HookRecord] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

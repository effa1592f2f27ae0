"""``ReviewHost``: everything auto-review asks of a forge, as one protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from auto_review.hosts._models import (
    ChangedFile,
    Comment,
    CommitStatus,
    InlineComment,
    Permission,
    PullRequest,
    RepoRef,
    Review,
    ReviewEvent,
)

__all__ = ["ReviewHost"]


class ReviewHost(Protocol):
    """A forge. Implementations raise only ``HostError`` subclasses."""

    async def version(self) -> str: ...

    async def current_user(self) -> str: ...

    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest: ...

    async def list_open_pull_requests(self, repo: RepoRef) -> list[PullRequest]: ...

    async def get_pull_diff(self, repo: RepoRef, number: int) -> str: ...

    async def list_changed_files(self, repo: RepoRef, number: int) -> list[ChangedFile]: ...

    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None:
        """Raw file contents at ``ref``; ``None`` when the file does not exist there."""
        ...

    async def list_issue_comments(self, repo: RepoRef, number: int) -> list[Comment]: ...

    async def get_issue_comment(self, repo: RepoRef, comment_id: int) -> Comment:
        """One PR conversation comment as it is now; ``HostNotFound`` when it was deleted."""
        ...

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]: ...

    async def list_review_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        """Inline comments of every submitted review on the PR (never a pending draft)."""
        ...

    async def create_issue_comment(self, repo: RepoRef, number: int, body: str) -> Comment: ...

    async def edit_issue_comment(self, repo: RepoRef, comment_id: int, body: str) -> Comment: ...

    async def create_review(
        self,
        repo: RepoRef,
        number: int,
        *,
        commit_id: str,
        body: str,
        event: ReviewEvent,
        comments: Sequence[InlineComment],
    ) -> int:
        """Post one review; returns its id."""
        ...

    async def update_pull_request(
        self, repo: RepoRef, number: int, *, title: str | None = None, body: str | None = None
    ) -> None: ...

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None: ...

    async def list_commit_statuses(self, repo: RepoRef, sha: str) -> list[CommitStatus]: ...

    async def get_permission(self, repo: RepoRef, login: str) -> Permission: ...

    def clone_url(self, repo: RepoRef) -> str:
        """HTTP(S) clone URL without credentials."""
        ...

    def git_auth_header(self) -> str:
        """``Authorization: ...`` header value for one git transfer; never store it."""
        ...

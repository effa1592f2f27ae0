"""``FixtureHost``: a labelled fixture served to the real pipeline as if it were a forge PR.

Nothing is posted anywhere: reviews and statuses are kept in memory. Files come from the
fixture's ``files`` (the head) and ``config`` (the base's ``.auto_review.yaml``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from auto_review.bench._fixture import Fixture
from auto_review.errors import ReviewError
from auto_review.hosts import (
    BaseSha,
    Comment,
    CommitStatus,
    HeadSha,
    InlineComment,
    PullRequest,
    RepoRef,
    Review,
    ReviewEvent,
)
from auto_review.review.workspace import Workspace, WorkspaceError, local_workspace

__all__ = ["FixtureHost"]

_CONFIG = ".auto_review.yaml"


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


class FixtureHost:
    """Implements ``PipelineHost`` over one fixture."""

    def __init__(self, fixture: Fixture) -> None:
        self.fixture = fixture
        self.repo = RepoRef("bench", "fixtures")
        self.head = HeadSha(_sha("head\0" + fixture.name + fixture.diff))
        self.base = BaseSha(_sha("base\0" + fixture.name))
        self.statuses: list[CommitStatus] = []

    def pull_request(self) -> PullRequest:
        f = self.fixture
        return PullRequest(
            repo=self.repo, number=1, title=f.title, body=f.body, author_login="bench",
            state="open", draft=False, merged=False, head_sha=self.head, base_sha=self.base,
            head_ref=f.name, base_ref="main", html_url=f"fixture:{f.name}",
        )  # fmt: skip

    def workspace(self, parent: Path) -> Workspace:
        """The fixture's head files as a checkout under ``parent``; ``WorkspaceError`` if none."""
        if not self.fixture.files:
            raise WorkspaceError("the fixture has no files; the diff alone was reviewed")
        root = parent / "checkout"
        for rel, text in self.fixture.files.items():
            target = (root / rel).resolve()
            if not target.is_relative_to(root.resolve()) or rel.startswith("/"):
                raise WorkspaceError(f"fixture file path leaves the checkout: {rel}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return local_workspace(root, self.head, self.fixture.diff)

    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        return self.pull_request()

    async def get_pull_diff(self, repo: RepoRef, number: int) -> str:
        return self.fixture.diff

    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None:
        if ref == self.base:
            text = self.fixture.config if path == _CONFIG else None
        else:
            text = self.fixture.files.get(path)
        return None if text is None else text.encode("utf-8")

    async def list_review_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        return []

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        return []  # never asked: a benchmark review is no job and has no run to look for

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
        raise ReviewError("a bench run never posts a review")

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        self.statuses.append(status)

    def clone_url(self, repo: RepoRef) -> str:
        raise ReviewError("a bench fixture is not cloned")

    def git_auth_header(self) -> str:
        return ""

"""``LocalHost``: a developer's checkout as the "forge" for ``auto-review review local``.

The "pull request" is the working tree against the merge base of ``HEAD`` and a base ref: its
diff is ``git diff <merge-base>`` (tracked changes, committed or not), its files are read from
the checkout itself (through the same confined reads), and the repository config comes from
the BASE ref, as on a forge. Every git command runs hermetically in the sandbox (so a personal
``diff.noprefix`` or ``color.ui=always`` cannot change what we parse). Reviews and statuses
"posted" here are kept in memory for the caller to print.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import re2

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
from auto_review.review._isolation import run_git
from auto_review.review.workspace import HARDENING, Workspace, git_env, local_workspace
from auto_review.settings import Isolation

__all__ = ["LocalHost", "LocalReview"]

_TIMEOUT = 120.0
_MAX_FILE = 4 * 1024 * 1024
_SAFE_NAME = re2.compile(r"[^A-Za-z0-9_.-]+")
_BASE_CANDIDATES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")


class LocalReview:
    def __init__(self, body: str, event: ReviewEvent, comments: Sequence[InlineComment]) -> None:
        self.body, self.event, self.comments = body, event, list(comments)


class LocalHost:
    """Implements ``PipelineHost`` over a local repository."""

    def __init__(self, root: Path, *, base: str | None, isolation: Isolation, home: Path) -> None:
        self.root = root.resolve()
        self._isolation = isolation
        self._home = home
        name = _SAFE_NAME.sub("-", self.root.name).strip(".-") or "local"
        self.repo = RepoRef("local", name[:100])
        self.reviews: list[LocalReview] = []
        self.statuses: list[CommitStatus] = []
        self.head = self._rev("HEAD")
        self.base_ref = base or self._default_base()
        self.base = self._git("merge-base", self.head, self._rev(self.base_ref)).strip()

    def _git(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> str:
        argv: list[str] = []
        for setting in HARDENING:
            argv += ["-c", setting]
        result = run_git(
            [*argv, *args],
            cwd=self.root,
            job_dir=self.root,
            env=git_env(self._home),
            timeout=_TIMEOUT,
            max_file_bytes=_MAX_FILE,
            isolation=self._isolation,
        )
        if result.timed_out or result.returncode not in ok_codes:
            detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise ReviewError(f"git {args[0]} failed: {detail[0] if detail else 'error'}")
        return result.stdout.decode("utf-8", "replace")

    def _rev(self, ref: str) -> str:
        if ref.startswith("-") or not ref.strip():
            raise ReviewError(f"not a usable ref: {ref!r}")
        return self._git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
        ).strip()

    def _default_base(self) -> str:
        for candidate in _BASE_CANDIDATES:
            try:
                self._rev(candidate)
            except ReviewError:
                continue
            return candidate
        raise ReviewError("no base branch found; pass --base REF")

    def workspace(self) -> Workspace:
        """The checkout itself, with the diff reviewed (bound: git computed it here)."""
        return local_workspace(self.root, self.head, self._diff())

    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        subject = self._git("log", "-1", "--format=%s", self.head).strip()
        body = self._git("log", "--format=%B", f"{self.base}..{self.head}")[:8192]
        return PullRequest(
            repo=self.repo,
            number=number,
            title=subject or "local changes",
            body=body,
            author_login="local",
            state="open",
            draft=False,
            merged=False,
            head_sha=HeadSha(self.head),
            base_sha=BaseSha(self.base),
            head_ref="HEAD",
            base_ref=self.base_ref,
            html_url=str(self.root),
        )

    def _diff(self) -> str:
        return self._git("diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", self.base)

    async def get_pull_diff(self, repo: RepoRef, number: int) -> str:
        return self._diff()

    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None:
        if path.startswith("-") or ".." in path.split("/"):
            return None
        out = self._git("cat-file", "-p", f"{ref}:{path}", ok_codes=(0, 128))
        return out.encode("utf-8") if out else None

    async def list_review_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        return []

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        return []  # never asked: a local review is no job and has no run to look for

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
        self.reviews.append(LocalReview(body, event, comments))
        return len(self.reviews)

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        self.statuses.append(status)

    def clone_url(self, repo: RepoRef) -> str:
        raise ReviewError("a local checkout is reviewed in place, not cloned")

    def git_auth_header(self) -> str:
        return ""

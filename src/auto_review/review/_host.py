"""What the pipeline needs of a forge (``PipelineHost``), how it gets a workspace, and whom it
tells what the sandbox refused the clone (``EgressObserver``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from auto_review.hosts import (
    Comment,
    CommitStatus,
    InlineComment,
    PullRequest,
    RepoRef,
    Review,
    ReviewEvent,
)
from auto_review.review._options import PipelineOptions
from auto_review.review.workspace import Workspace, clone_workspace

__all__ = ["EgressObserver", "PipelineHost", "WorkspaceFactory", "clone_for"]

# (pr, since): the checkout of the PR head and, when ``since`` (the last reviewed head) is given,
# the diff from there as ``Workspace.since_diff``, else the whole PR's as ``Workspace.pr_diff``,
# both of that head; a factory that cannot compute them leaves None (see ``_diffsource``).
WorkspaceFactory = Callable[[PullRequest, str | None], Awaitable[Workspace]]
# Called once per clone the egress proxy refused something, with each refusal's HTTP status;
# only statuses, since the destinations are the (possibly hostile) clone's choice.
EgressObserver = Callable[[tuple[int, ...]], None]


class PipelineHost(Protocol):
    """The part of ``ReviewHost`` a review uses (``LocalHost`` implements just this)."""

    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest: ...

    async def get_pull_diff(self, repo: RepoRef, number: int) -> str: ...

    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None: ...

    async def list_review_comments(self, repo: RepoRef, number: int) -> list[Comment]: ...

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]: ...

    async def create_review(
        self,
        repo: RepoRef,
        number: int,
        *,
        commit_id: str,
        body: str,
        event: ReviewEvent,
        comments: Sequence[InlineComment],
    ) -> int: ...

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None: ...

    def clone_url(self, repo: RepoRef) -> str: ...

    def git_auth_header(self) -> str: ...


def clone_for(host: PipelineHost, options: PipelineOptions) -> WorkspaceFactory:
    """A factory cloning the PR head from the forge (in a worker thread: git blocks)."""

    async def factory(pr: PullRequest, since: str | None) -> Workspace:
        return await asyncio.to_thread(
            clone_workspace,
            clone_url=host.clone_url(pr.repo),
            auth_header=host.git_auth_header(),
            head_sha=pr.head_sha,
            parent=options.workspace_parent,
            timeout=options.clone_timeout_secs,
            max_bytes=options.clone_max_bytes,
            fallback_refs=(f"+refs/pull/{pr.number}/head:refs/remotes/pr/head",),
            isolation=options.isolation,
            since=since,
            base=pr.base_sha,
            merge_base=pr.merge_base,
        )

    return factory

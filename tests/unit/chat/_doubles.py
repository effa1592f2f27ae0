"""In-memory ``ReviewHost`` and job queue for chat unit tests; the e2e tests use the fake forge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from auto_review.chat import ChatMention
from auto_review.errors import HostError, HostNotFound
from auto_review.hosts import (
    BaseSha,
    Comment,
    CommentKind,
    HeadSha,
    InlineComment,
    Permission,
    PullRequest,
    RepoRef,
    Review,
    ReviewEvent,
)
from auto_review.review import Trigger

REPO = RepoRef("acme", "app")
OTHER = RepoRef("acme", "other")
HEAD = HeadSha("a" * 40)
BASE = BaseSha("b" * 40)

DIFF = (
    "diff --git a/src/calc.py b/src/calc.py\n"
    "--- a/src/calc.py\n"
    "+++ b/src/calc.py\n"
    "@@ -1,5 +1,5 @@\n"
    " def add(a, b):\n"
    "     return a + b\n"
    " \n"
    " def sub(a, b):\n"
    "-    return a - b\n"
    "+    return a + b\n"
)
HEAD_FILE = b"def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a + b\n"


def make_pr(number: int = 7, *, draft: bool = False, state: str = "open") -> PullRequest:
    return PullRequest(
        repo=REPO,
        number=number,
        title="Fix calc",
        body="Small fix",
        author_login="alice",
        state=state,
        draft=draft,
        merged=False,
        head_sha=HEAD,
        base_sha=BASE,
        head_ref="feature",
        base_ref="main",
        html_url=f"http://forge.test/acme/app/pulls/{number}",
    )


@dataclass
class PostedReview:
    event: ReviewEvent
    body: str
    comments: tuple[InlineComment, ...]
    commit_id: str


@dataclass
class MemoryHost:
    """Just enough forge for chat: one PR per number, files by (ref, path), recorded posts."""

    prs: dict[int, PullRequest] = field(default_factory=lambda: {7: make_pr()})
    diff: str = DIFF
    files: dict[tuple[str, str], bytes] = field(
        default_factory=lambda: {(HEAD, "src/calc.py"): HEAD_FILE}
    )
    permissions: dict[str, Permission] = field(default_factory=dict)
    issue_comments: list[Comment] = field(default_factory=list)
    review_comments: list[Comment] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    posted_comments: list[str] = field(default_factory=list)
    posted_reviews: list[PostedReview] = field(default_factory=list)
    permission_calls: int = 0
    refuse_inline: bool = False
    # Users' comments as the forge holds them now, by (kind, id); ``wrote`` adds a mention's.
    written: dict[tuple[CommentKind, int], Comment] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)  # comment ids users deleted
    comment_reads: int = 0
    _next_id: int = 1000

    def wrote(self, mention: ChatMention) -> None:
        """The comment ``mention`` was queued from exists here, unless it was deleted, or
        edited or placed in a thread by the test already."""
        key = (mention.kind, mention.comment_id)
        if mention.comment_id in self.deleted or key in self.written:
            return
        if any(c.id == mention.comment_id for c in self.review_comments):
            return
        comment = Comment(mention.comment_id, mention.kind, mention.author, mention.body, "")
        self.written[key] = comment
        if mention.kind is CommentKind.REVIEW:
            self.review_comments.append(comment)

    def edit(self, mention: ChatMention, body: str) -> None:
        """Someone changed the text of ``mention``'s comment on the forge."""
        self.written[(mention.kind, mention.comment_id)] = Comment(
            mention.comment_id, mention.kind, mention.author, body, ""
        )

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        return self.prs[number]

    async def get_pull_diff(self, repo: RepoRef, number: int) -> str:
        return self.diff

    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None:
        return self.files.get((ref, path))

    async def list_issue_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        return list(self.issue_comments)

    async def get_issue_comment(self, repo: RepoRef, comment_id: int) -> Comment:
        self.comment_reads += 1
        comment = self.written.get((CommentKind.ISSUE, comment_id))
        if comment is None or comment_id in self.deleted:
            raise HostNotFound("comment does not exist", status=404)
        return comment

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        return list(self.reviews)

    async def list_review_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        self.comment_reads += 1
        return [c for c in self.review_comments if c.id not in self.deleted]

    async def create_issue_comment(self, repo: RepoRef, number: int, body: str) -> Comment:
        self.posted_comments.append(body)
        comment = Comment(self._id(), CommentKind.ISSUE, "auto-review", body, "")
        self.issue_comments.append(comment)
        return comment

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
        if self.refuse_inline and comments:
            raise HostError("line is not part of the diff", status=422)
        review_id = self._id()
        self.posted_reviews.append(PostedReview(event, body, tuple(comments), commit_id))
        self.reviews.append(Review(review_id, "auto-review", event.value, body, commit_id))
        return review_id

    async def get_permission(self, repo: RepoRef, login: str) -> Permission:
        self.permission_calls += 1
        return self.permissions.get(login, Permission.READ)

    # what chat never calls, present so the object satisfies ReviewHost
    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"chat should not call ReviewHost.{name}")


@dataclass
class Enqueued:
    job_id: int
    created: bool


@dataclass
class RecordingQueue:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def enqueue_review(
        self,
        repo: RepoRef,
        number: int,
        head_sha: HeadSha,
        *,
        trigger: Trigger,
        force: bool,
        full: bool = False,
    ) -> Enqueued:
        self.calls.append(
            {
                "repo": repo,
                "number": number,
                "head": head_sha,
                "trigger": trigger,
                "force": force,
                "full": full,
            }
        )
        return Enqueued(len(self.calls), True)


@dataclass
class Mention:
    """A ``ChatMention`` (``jobs.ChatRequest`` has the same fields)."""

    body: str
    author: str = "maria"
    comment_id: int = 1
    repo: RepoRef = REPO
    number: int = 7
    kind: CommentKind = CommentKind.ISSUE

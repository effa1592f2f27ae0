"""Decoding of authenticated webhook bodies into small, validated event DTOs.

Only the fields the gateway uses are read; unknown fields and unknown actions are tolerated so a
newer forge does not turn into 400s. Failures raise ``PayloadError`` with a bounded ``kind``
(``json``, ``schema``, ``value``) for the payload-failure metric. Bodies are untrusted: names
are validated (``RepoRef``), head SHAs must be full object ids, texts are length-capped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from auto_review.chat import MAX_COMMENT_CHARS
from auto_review.hosts import CommentKind, HeadSha, RepoRef, is_sha

__all__ = [
    "CommentEvent",
    "PayloadError",
    "PullRequestEvent",
    "decode_comment",
    "decode_pull_request",
    "mentions",
]

_M = TypeVar("_M", bound=BaseModel)


class PayloadError(ValueError):
    """An authenticated body that cannot be used; ``kind`` is a bounded metric label."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_Loose):
    login: str = ""
    username: str = ""

    @property
    def name(self) -> str:
        return self.login or self.username


class _Repo(_Loose):
    name: str
    full_name: str = ""
    owner: _User | None = None

    def ref(self) -> RepoRef:
        owner, sep, _ = self.full_name.partition("/")
        if not sep:
            owner = self.owner.name if self.owner else ""
        return RepoRef(owner, self.name)


class _Branch(_Loose):
    sha: str
    ref: str = ""


class _Pull(_Loose):
    number: int | None = None
    state: str | None = None
    draft: bool = False
    head: _Branch
    base: _Branch | None = None
    title: str = ""


class _PullPayload(_Loose):
    action: str = ""
    number: int | None = None
    pull_request: _Pull
    repository: _Repo
    sender: _User | None = None
    requested_reviewer: _User | None = None  # on review_requested and review_request_removed


class _Comment(_Loose):
    id: int
    body: str = ""
    user: _User | None = None


class _Issue(_Loose):
    number: int
    pull_request: dict[str, object] | None = None


class _IssueCommentPayload(_Loose):
    action: str = ""
    comment: _Comment
    issue: _Issue
    is_pull: bool | None = None
    repository: _Repo
    sender: _User | None = None


class _ReviewText(_Loose):
    type: str = ""
    content: str = ""


class _ReviewCommentPayload(_Loose):
    action: str = ""
    number: int | None = None
    pull_request: _Pull
    comment: _Comment | None = None
    review: _ReviewText | None = None
    repository: _Repo
    sender: _User | None = None


@dataclass(frozen=True)
class PullRequestEvent:
    action: str
    repo: RepoRef
    number: int
    head_sha: HeadSha
    is_open: bool
    draft: bool
    sender: str
    base_sha: str | None = None  # where the repository config is read from
    requested_reviewer: str = ""


@dataclass(frozen=True)
class CommentEvent:
    """A comment on a PR; ``comment_id`` is None when the forge did not send one."""

    action: str
    repo: RepoRef
    number: int
    kind: CommentKind
    comment_id: int | None
    author: str
    body: str
    on_pull_request: bool


def _load(body: bytes) -> object:
    try:
        return json.loads(body)
    # RecursionError: a signed body nested deeper than the parser goes (10 KB is enough) is
    # malformed, not a server error.
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError("json", "body is not JSON") from exc


def _validate(model: type[_M], data: object) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError("schema", f"payload does not match {model.__name__}") from exc


def _validate_json(model: type[_M], body: bytes) -> _M:
    """Parse and validate in one pass (pydantic-core's JSON parser: no dict of the whole body)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        kind = "json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "schema"
        raise PayloadError(kind, f"payload does not match {model.__name__}") from exc


def decode_pull_request(body: bytes) -> PullRequestEvent:
    """A ``pull_request`` delivery; ``PayloadError`` if it cannot be used."""
    p = _validate_json(_PullPayload, body)
    number = p.number if p.number is not None else p.pull_request.number
    if number is None or number <= 0:
        raise PayloadError("value", "pull request number missing")
    if not is_sha(p.pull_request.head.sha):
        raise PayloadError("value", "head sha is not an object id")
    state = p.pull_request.state or ("closed" if p.action == "closed" else "open")
    return PullRequestEvent(
        action=p.action,
        repo=_repo(p.repository),
        number=number,
        head_sha=HeadSha(p.pull_request.head.sha),
        is_open=state.lower() == "open" and p.action != "closed",
        draft=p.pull_request.draft,
        sender=p.sender.name if p.sender else "",
        base_sha=base.sha if (base := p.pull_request.base) and is_sha(base.sha) else None,
        requested_reviewer=p.requested_reviewer.name if p.requested_reviewer else "",
    )


def decode_comment(body: bytes, event: str) -> CommentEvent:
    """An ``issue_comment`` or PR review-comment delivery; ``PayloadError`` if unusable."""
    if event == "issue_comment":
        return _issue_comment(_validate_json(_IssueCommentPayload, body))
    data = _load(body)
    # Gitea sends PR conversation comments under either header; the body shape decides.
    if isinstance(data, dict) and "issue" in data:
        return _issue_comment(_validate(_IssueCommentPayload, data))
    r = _validate(_ReviewCommentPayload, data)
    number = r.number if r.number is not None else r.pull_request.number
    if number is None or number <= 0:
        raise PayloadError("value", "pull request number missing")
    # Forgejo puts a review comment's text in review.content and sends no comment object.
    text = r.comment.body if r.comment is not None else (r.review.content if r.review else "")
    return CommentEvent(
        action=r.action,
        repo=_repo(r.repository),
        number=number,
        kind=CommentKind.REVIEW,
        comment_id=r.comment.id if r.comment is not None else None,
        author=_author(r.comment.user if r.comment else None, r.sender),
        body=text[:MAX_COMMENT_CHARS],
        on_pull_request=True,
    )


def _issue_comment(c: _IssueCommentPayload) -> CommentEvent:
    on_pr = c.is_pull if c.is_pull is not None else c.issue.pull_request is not None
    return CommentEvent(
        action=c.action,
        repo=_repo(c.repository),
        number=c.issue.number,
        kind=CommentKind.ISSUE,
        comment_id=c.comment.id,
        author=_author(c.comment.user, c.sender),
        body=c.comment.body[:MAX_COMMENT_CHARS],
        on_pull_request=on_pr,
    )


def _repo(repo: _Repo) -> RepoRef:
    try:
        return repo.ref()
    except ValueError as exc:
        raise PayloadError("value", "unsafe repository name") from exc


def _author(user: _User | None, sender: _User | None) -> str:
    if user is not None and user.name:
        return user.name
    return sender.name if sender is not None else ""


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")


def mentions(body: str, name: str) -> bool:
    """True when ``@name`` appears as a whole handle outside quoted lines (case-insensitive).

    Plain string scanning, no regular expression, over untrusted text. For the default name
    ``auto-review`` the spelling ``@auto_review`` is accepted too.
    """
    handles = {"@" + name.lower()}
    if name.lower() == "auto-review":
        handles.add("@auto_review")
    for line in body.lower().splitlines():
        if line.lstrip().startswith(">"):
            continue  # a quote of an earlier mention is not a new request
        for handle in handles:
            start = line.find(handle)
            while start != -1:
                before = line[start - 1] if start > 0 else " "
                end = start + len(handle)
                after = line[end] if end < len(line) else " "
                trailing_dot = after == "." and (end + 1 >= len(line) or line[end + 1] == " ")
                if (before not in _NAME_CHARS and before != "@") and (
                    after not in _NAME_CHARS or trailing_dot
                ):
                    return True
                start = line.find(handle, start + 1)
    return False

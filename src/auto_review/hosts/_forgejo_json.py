"""Forgejo/Gitea JSON to auto-review DTOs, and checks on values before they enter a URL.

Defensive throughout: the forge is an external system, so a missing or mistyped field becomes a
``HostError`` naming the field, never a ``KeyError`` or ``TypeError`` deep in the pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from auto_review.errors import HostError
from auto_review.hosts._models import (
    BaseSha,
    ChangedFile,
    Comment,
    CommentKind,
    HeadSha,
    InlineComment,
    PullRequest,
    RepoRef,
    Review,
    is_sha,
)

__all__ = [
    "WebhookInfo",
    "changed_file",
    "check_file_path",
    "check_login",
    "check_number",
    "check_ref",
    "check_sha",
    "hook",
    "inline",
    "int_field",
    "issue_comment",
    "json_list",
    "opt_str_field",
    "pull",
    "review",
    "review_comment",
    "str_field",
]

_WIP_PREFIXES = ("wip:", "[wip]")  # Gitea's default WORK_IN_PROGRESS_PREFIXES
_LOGIN = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_REF = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
# Gitea's ChangedFile.status -> ChangedFile.status (added | modified | removed | renamed).
_FILE_STATUS = {
    "added": "added",
    "copied": "added",
    "deleted": "removed",
    "removed": "removed",
    "renamed": "renamed",
}


@dataclass(frozen=True)
class WebhookInfo:
    """A repository webhook as the forge lists it (the secret is never returned)."""

    id: int
    type: str
    url: str
    events: tuple[str, ...]
    active: bool


def check_number(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise HostError("PR, comment and hook numbers are positive integers")
    return value


def check_sha(value: str) -> str:
    if not is_sha(value):
        raise HostError("expected a full hexadecimal commit SHA")
    return value


def check_ref(value: str) -> str:
    if is_sha(value):
        return value
    if not _REF.fullmatch(value) or ".." in value or value.startswith(("-", "/")):
        raise HostError("invalid git ref")
    return value


def check_file_path(path: str) -> str:
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or any(ord(c) < 32 for c in path):
        raise HostError("invalid repository file path")
    return "/".join(quote(p, safe="") for p in parts)


def json_list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise HostError("the forge sent an unexpected answer (expected a list)")
    return data


def _field(data: Any, key: str) -> Any:
    if not isinstance(data, dict):
        raise HostError("the forge sent an unexpected answer (expected an object)")
    return data.get(key)


def str_field(data: Any, key: str) -> str:
    value = _field(data, key)
    if not isinstance(value, str):
        raise HostError(f"the forge answer lacks {key!r}")
    return value


def opt_str_field(data: Any, key: str) -> str:
    value = _field(data, key)
    return value if isinstance(value, str) else ""


def int_field(data: Any, key: str) -> int:
    value = _field(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise HostError(f"the forge answer lacks {key!r}")
    return value


def _login(data: Any, key: str = "user") -> str:
    user = _field(data, key)
    return opt_str_field(user, "login") if isinstance(user, dict) else ""


def pull(repo: RepoRef, data: Any) -> PullRequest:
    head, base = _field(data, "head"), _field(data, "base")
    head_sha, base_sha = str_field(head, "sha"), str_field(base, "sha")
    if not (is_sha(head_sha) and is_sha(base_sha)):
        raise HostError("the forge sent a PR with an invalid commit SHA")
    title = opt_str_field(data, "title")
    draft = _field(data, "draft")
    merge_base = opt_str_field(data, "merge_base")
    return PullRequest(
        repo=repo,
        number=int_field(data, "number"),
        title=title,
        body=opt_str_field(data, "body"),
        author_login=_login(data),
        state=opt_str_field(data, "state") or "open",
        draft=draft if isinstance(draft, bool) else title.lower().startswith(_WIP_PREFIXES),
        merged=_field(data, "merged") is True,
        head_sha=HeadSha(head_sha),
        base_sha=BaseSha(base_sha),
        head_ref=opt_str_field(head, "ref"),
        base_ref=opt_str_field(base, "ref"),
        html_url=opt_str_field(data, "html_url"),
        merge_base=merge_base if is_sha(merge_base) else None,
    )


def changed_file(data: Any) -> ChangedFile:
    additions, deletions = _field(data, "additions"), _field(data, "deletions")
    previous = opt_str_field(data, "previous_filename")
    return ChangedFile(
        path=str_field(data, "filename"),
        status=_FILE_STATUS.get(opt_str_field(data, "status"), "modified"),
        additions=additions if isinstance(additions, int) else 0,
        deletions=deletions if isinstance(deletions, int) else 0,
        previous_path=previous or None,
    )


def issue_comment(data: Any) -> Comment:
    return Comment(
        id=int_field(data, "id"),
        kind=CommentKind.ISSUE,
        author_login=_login(data),
        body=opt_str_field(data, "body"),
        created_at=opt_str_field(data, "created_at"),
        updated_at=opt_str_field(data, "updated_at"),
    )


def review_comment(data: Any, review_id: int) -> Comment:
    # Forgejo reports a new-side anchor as ``position`` and an old-side one as
    # ``original_position``; only new-side lines are meaningful to the pipeline.
    position = _field(data, "position")
    return Comment(
        id=int_field(data, "id"),
        kind=CommentKind.REVIEW,
        author_login=_login(data),
        body=opt_str_field(data, "body"),
        created_at=opt_str_field(data, "created_at"),
        path=opt_str_field(data, "path") or None,
        line=position if isinstance(position, int) and position > 0 else None,
        review_id=review_id,
        updated_at=opt_str_field(data, "updated_at"),
    )


def review(data: Any) -> Review:
    return Review(
        id=int_field(data, "id"),
        author_login=_login(data),
        state=opt_str_field(data, "state"),
        body=opt_str_field(data, "body"),
        commit_id=opt_str_field(data, "commit_id"),
    )


def inline(comment: InlineComment) -> dict[str, Any]:
    if (comment.new_line is None) == (comment.old_line is None):
        raise HostError("an inline comment needs exactly one of new_line and old_line")
    line = comment.new_line if comment.new_line is not None else comment.old_line
    if line is None or line <= 0:
        raise HostError("inline comment lines are positive")
    return {
        "path": comment.path,
        "body": comment.body,
        "new_position": comment.new_line or 0,
        "old_position": comment.old_line or 0,
    }


def hook(data: Any) -> WebhookInfo:
    config = _field(data, "config")
    events = _field(data, "events")
    return WebhookInfo(
        id=int_field(data, "id"),
        type=opt_str_field(data, "type"),
        url=opt_str_field(config, "url") if isinstance(config, dict) else "",
        events=tuple(e for e in events if isinstance(e, str)) if isinstance(events, list) else (),
        active=_field(data, "active") is True,
    )


def check_login(login: str) -> str:
    """``login`` if it is a plausible forge user name (safe as a URL path segment)."""
    if not _LOGIN.fullmatch(login):
        raise HostError("invalid user login")
    return login

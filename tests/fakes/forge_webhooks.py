"""Webhook payloads and signed delivery the way Forgejo sends them (services/webhook/deliver.go).

Headers: ``X-Forgejo-{Delivery,Event,Event-Type,Signature}`` with ``X-Gitea-*`` and ``X-Gogs-*``
copies, GitHub-style ``X-GitHub-Event``/``X-Hub-Signature-256: sha256=<hex>``. The signature is the
hex HMAC-SHA256 of the raw body, without a prefix. Payload shapes follow the recorded Forgejo
fixtures in tests/data/webhooks/forgejo (a test keeps them in step).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fakes.forge_json import comment_json, iso, pull_json, repo_json, user_json
from tests.fakes.forge_state import (
    ForgeState,
    IssueCommentRecord,
    PullRecord,
    RepoRecord,
    UserRecord,
)

__all__ = [
    "EVENT_HEADER",
    "Delivery",
    "deliver",
    "hook_wants",
    "issue_comment_payload",
    "pull_request_payload",
    "review_comment_payload",
    "sign",
    "webhook_headers",
]

# Gitea's HookEventType -> the X-*-Event header (HookEventType.Event()).
EVENT_HEADER = {
    "push": "push",
    "pull_request": "pull_request",
    "pull_request_sync": "pull_request",
    "pull_request_review_request": "pull_request",
    "pull_request_comment": "issue_comment",
    "issue_comment": "issue_comment",
    "pull_request_review_comment": "pull_request_comment",
    "pull_request_review_approved": "pull_request_approved",
    "pull_request_review_rejected": "pull_request_rejected",
}


@dataclass(frozen=True)
class Delivery:
    """One attempted delivery and its answer (``status`` 0 when the connection failed)."""

    url: str
    event_type: str
    delivery_id: str
    status: int
    headers: Mapping[str, str]
    body: bytes


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``body``: the value of X-Forgejo-Signature."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(
    event_type: str, body: bytes, secret: str, delivery_id: str | None = None
) -> dict[str, str]:
    """Every header Forgejo sets on a delivery of ``event_type``."""
    event = EVENT_HEADER.get(event_type, event_type)
    delivery = delivery_id or str(uuid.uuid4())
    signature = sign(secret, body) if secret else ""
    headers = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
    for vendor in ("Forgejo", "Gitea", "Gogs"):
        headers[f"X-{vendor}-Delivery"] = delivery
        headers[f"X-{vendor}-Event"] = event
        headers[f"X-{vendor}-Event-Type"] = event_type
        if signature:
            headers[f"X-{vendor}-Signature"] = signature
    headers["X-GitHub-Delivery"] = delivery
    headers["X-GitHub-Event"] = event
    headers["X-GitHub-Event-Type"] = event_type
    if signature:
        headers["X-Hub-Signature-256"] = f"sha256={signature}"
    return headers


def deliver(
    url: str,
    event_type: str,
    payload: Mapping[str, Any],
    secret: str,
    *,
    delivery_id: str | None = None,
    timeout: float = 10.0,
) -> Delivery:
    """POST ``payload`` to ``url`` as Forgejo would; never raises on HTTP errors."""
    body = json.dumps(payload, indent=2).encode()  # Forgejo pretty-prints hook bodies
    headers = webhook_headers(event_type, body, secret, delivery_id)
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            status = client.post(url, content=body, headers=headers).status_code
    except httpx.HTTPError:
        status = 0
    return Delivery(url, event_type, headers["X-Forgejo-Delivery"], status, headers, body)


def hook_wants(events: list[str], event_type: str) -> bool:
    """Whether a hook subscribed to ``events`` fires for ``event_type`` (Gitea toHookEvents)."""
    if event_type in events:
        return True
    # "pull_request" switches on every pull-request sub-event, as Gitea's pullHook() does.
    return event_type.startswith("pull_request") and "pull_request" in events


def _hook_user(user: UserRecord, base: str) -> dict[str, Any]:
    # Hook payloads carry Forgejo's ``username`` alongside ``login`` (see the recorded ones).
    return {**user_json(user, base), "username": user.login}


def _hook_repo(state: ForgeState, repo: RepoRecord, base: str) -> dict[str, Any]:
    data = repo_json(state, repo, base, "admin")
    data["owner"] = _hook_user(state.users[repo.owner], base)
    return data


def _hook_pull(state: ForgeState, repo: RepoRecord, pull: PullRecord, base: str) -> dict[str, Any]:
    data = pull_json(state, repo, pull, base, "admin")
    data["user"] = _hook_user(state.users[pull.user], base)
    for side in ("base", "head"):
        data[side] = {k: v for k, v in data[side].items() if k != "repo"}
    return data


def pull_request_payload(
    state: ForgeState,
    repo: RepoRecord,
    pull: PullRecord,
    *,
    action: str,
    sender: str,
    base: str,
    requested_reviewer: str | None = None,
) -> dict[str, Any]:
    """``pull_request`` payload (actions: opened, synchronized, reopened, closed, edited,
    review_requested with ``requested_reviewer``, ...)."""
    reviewer = requested_reviewer and _hook_user(state.users[requested_reviewer], base)
    return {
        "action": action,
        "number": pull.number,
        "pull_request": _hook_pull(state, repo, pull, base),
        "requested_reviewer": reviewer or None,
        "repository": _hook_repo(state, repo, base),
        "sender": _hook_user(state.users[sender], base),
        "commit_id": "",
        "review": None,
    }


def issue_comment_payload(
    state: ForgeState,
    repo: RepoRecord,
    pull: PullRecord,
    comment: IssueCommentRecord,
    *,
    action: str,
    sender: str,
    base: str,
    previous_body: str | None = None,
) -> dict[str, Any]:
    """``issue_comment`` payload for a PR conversation comment (``is_pull`` true)."""
    html = f"{base}/{repo.full_name}/pulls/{pull.number}"
    comment_data = comment_json(state, repo, comment, base)
    comment_data["user"] = _hook_user(state.users[comment.user], base)
    payload: dict[str, Any] = {
        "action": action,
        "issue": {
            "id": pull.id,
            "url": f"{base}/api/v1/repos/{repo.full_name}/issues/{pull.number}",
            "html_url": html,
            "number": pull.number,
            "user": _hook_user(state.users[pull.user], base),
            "original_author": "",
            "original_author_id": 0,
            "title": pull.title,
            "body": pull.body,
            "ref": "",
            "assets": [],
            "labels": [],
            "milestone": None,
            "assignee": None,
            "assignees": None,
            "state": pull.state,
            "is_locked": False,
            "comments": sum(1 for c in repo.issue_comments if c.number == pull.number),
            "created_at": iso(pull.created_at),
            "updated_at": iso(pull.updated_at),
            "closed_at": None,
            "due_date": None,
            "pull_request": {
                "merged": pull.merged,
                "merged_at": None,
                "draft": False,
                "html_url": html,
            },
            "repository": {
                "id": repo.id,
                "name": repo.name,
                "owner": repo.owner,
                "full_name": repo.full_name,
            },
            "pin_order": 0,
        },
        "comment": comment_data,
        "repository": _hook_repo(state, repo, base),
        "sender": _hook_user(state.users[sender], base),
        "is_pull": True,
    }
    if previous_body is not None:
        payload["changes"] = {"body": {"from": previous_body}}
    return payload


def review_comment_payload(
    state: ForgeState,
    repo: RepoRecord,
    pull: PullRecord,
    *,
    content: str,
    sender: str,
    base: str,
) -> dict[str, Any]:
    """``pull_request_comment`` payload of an inline review comment: text in ``review.content``."""
    payload = pull_request_payload(state, repo, pull, action="reviewed", sender=sender, base=base)
    payload["review"] = {"type": "pull_request_review_comment", "content": content}
    return payload

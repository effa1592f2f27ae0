"""Test doubles for gateway and jobs unit tests: an in-memory forge, a scripted review runner.

``MemoryHost`` implements the parts of ``ReviewHost`` the gateway and the workers call; tests
that need HTTP and git use the fake forge (tests/fakes/forge.py) with the Forgejo adapter.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from auto_review.errors import HostError, HostNotFound, HostUnavailable
from auto_review.gateway import Gateway, GatewayDeps, create_app
from auto_review.hosts import (
    BaseSha,
    Comment,
    CommentKind,
    CommitStatus,
    HeadSha,
    Permission,
    PullRequest,
    RepoRef,
)
from auto_review.jobs import ChatRequest
from auto_review.review import Outcome, ReviewOutcome, ReviewRequest
from auto_review.settings import Settings, load_settings
from auto_review.store import Store

SECRET = "s" * 40
CI_TOKEN = "c" * 40
DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks" / "forgejo"
SHA_A = "a" * 40
SHA_B = "b" * 40


def settings(**env: str) -> Settings:
    base = {
        "WEBHOOK_SECRET": SECRET,
        "AR_CI_REVIEW_TOKEN": CI_TOKEN,
        "FORGEJO_BASE_URL": "http://127.0.0.1:9",
        "AR_FORGEJO_TOKEN": "t" * 40,
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "AR_POLL_INTERVAL_SECS": "0",
    }
    base.update(env)
    return load_settings(base).settings


def recorded(name: str) -> bytes:
    """A recorded Forgejo payload from tests/data, byte for byte."""
    return (DATA / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hook_headers(
    event: str, body: bytes, *, delivery: str | None = None, header: str = "X-Forgejo-Signature"
) -> dict[str, str]:
    value = sign(body)
    if header == "X-Hub-Signature-256":
        value = "sha256=" + value
    headers = {"X-Forgejo-Event": event, header: value, "Content-Type": "application/json"}
    if delivery is not None:
        headers["X-Forgejo-Delivery"] = delivery
    return headers


def pr(
    repo: str = "alice/demo",
    number: int = 1,
    *,
    head: str = SHA_A,
    state: str = "open",
    draft: bool = False,
) -> PullRequest:
    return PullRequest(
        repo=RepoRef.parse(repo),
        number=number,
        title="t",
        body="b",
        author_login="alice",
        state=state,
        draft=draft,
        merged=False,
        head_sha=HeadSha(head),
        base_sha=BaseSha("0" * 40),
        head_ref="feature",
        base_ref="main",
        html_url="http://forge/pr",
    )


@dataclass
class MemoryHost:
    """Just enough forge for the gateway: PRs, comments, statuses; failures on demand."""

    pulls: dict[tuple[str, int], PullRequest] = field(default_factory=dict)
    issue_comments: dict[tuple[str, int], list[Comment]] = field(default_factory=dict)
    review_comments: dict[tuple[str, int], list[Comment]] = field(default_factory=dict)
    statuses: list[tuple[str, str, CommitStatus]] = field(default_factory=list)
    fail_with: HostError | None = None
    status_failures: int = 0
    calls: list[str] = field(default_factory=list)
    # login -> access, or the error the forge answers for it; others are not collaborators
    permissions: dict[str, Permission | HostError] = field(default_factory=dict)

    def add(self, pull: PullRequest) -> PullRequest:
        self.pulls[(str(pull.repo), pull.number)] = pull
        return pull

    def move_head(self, repo: str, number: int, head: str) -> None:
        key = (repo, number)
        self.pulls[key] = replace(self.pulls[key], head_sha=HeadSha(head))

    def comment(
        self,
        repo: str,
        number: int,
        cid: int,
        body: str,
        *,
        author: str = "bob",
        review: bool = False,
    ) -> Comment:
        kind = CommentKind.REVIEW if review else CommentKind.ISSUE
        c = Comment(id=cid, kind=kind, author_login=author, body=body, created_at="")
        table = self.review_comments if review else self.issue_comments
        table.setdefault((repo, number), []).append(c)
        return c

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_with is not None:
            raise self.fail_with

    async def version(self) -> str:
        self._check("version")
        return "1.0"

    async def get_permission(self, repo: RepoRef, login: str) -> Permission:
        self._check("get_permission")
        answer = self.permissions.get(login, Permission.NONE)
        if isinstance(answer, HostError):
            raise answer
        return answer

    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        self._check("get_pull_request")
        try:
            return self.pulls[(str(repo), number)]
        except KeyError:
            raise HostNotFound("no such pull request", status=404) from None

    async def list_issue_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        self._check("list_issue_comments")
        return list(self.issue_comments.get((str(repo), number), []))

    async def list_review_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        self._check("list_review_comments")
        return list(self.review_comments.get((str(repo), number), []))

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        self.calls.append("set_commit_status")
        if self.status_failures > 0:
            self.status_failures -= 1
            raise HostUnavailable("status refused", status=500)
        self.statuses.append((str(repo), sha, status))


@dataclass
class ScriptedRunner:
    """A ``ReviewRunner`` that records requests and follows a script of results."""

    script: list[ReviewOutcome | BaseException] = field(default_factory=list)
    requests: list[ReviewRequest] = field(default_factory=list)
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, request: ReviewRequest) -> ReviewOutcome:
        self.requests.append(request)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        return ReviewOutcome(outcome=Outcome.POSTED, reason="posted", prompt_tokens=10)


@dataclass
class RecordingChat:
    requests: list[ChatRequest] = field(default_factory=list)
    skip: str | None = None  # what ``run`` returns: why it left the mention alone

    async def run(self, request: ChatRequest) -> str | None:
        self.requests.append(request)
        return self.skip


def build(
    tmp_path: Path,
    *,
    host: MemoryHost | None = None,
    runner: ScriptedRunner | None = None,
    env: Mapping[str, str] | None = None,
    **deps: Any,
) -> tuple[Starlette, Gateway, MemoryHost, ScriptedRunner]:
    host = host or MemoryHost()
    runner = runner or ScriptedRunner()
    store = Store.open(tmp_path / "state.sqlite3")
    app = create_app(
        settings(**dict(env or {})),
        GatewayDeps(store=store, host=host, runner=runner, **deps),  # type: ignore[arg-type]
    )
    return app, app.state.gateway, host, runner


def payload(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data).encode()


async def wait_for(predicate: Callable[[], bool], limit_secs: float = 10.0) -> None:
    """Poll ``predicate`` until true (no wall-clock assertion: only a safety bound)."""
    async with asyncio.timeout(limit_secs):
        while not predicate():  # noqa: ASYNC110 - polling foreign state on purpose
            await asyncio.sleep(0.01)


def hold_statuses(host: MemoryHost) -> tuple[asyncio.Event, asyncio.Event]:
    """Make ``host``'s status calls wait until the first event (the gate) is set; the second is
    set as soon as one call waits (a request is mid-flight on the forge)."""
    gate, entered = asyncio.Event(), asyncio.Event()
    real = host.set_commit_status

    async def held(repo: RepoRef, sha: str, status: CommitStatus) -> None:
        entered.set()
        await gate.wait()
        await real(repo, sha, status)

    host.set_commit_status = held  # type: ignore[method-assign]
    return gate, entered

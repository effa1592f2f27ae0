"""A fake Forgejo: a real HTTP server on 127.0.0.1 with real git repositories behind it.

It serves the ``/api/v1`` routes auto-review calls (``forge_api.API_ROUTES``), git smart HTTP
through ``git http-backend`` at ``/{owner}/{repo}.git/...`` (token required; any object by SHA,
as with Gitea's ``uploadpack.allowAnySHA1InWant``), and the web page
``/{owner}/{repo}/compare/{base}...{head}.diff`` (anonymous as on Gitea, whatever the token: a
private repository is 404; auto-review does not call it, the fake answers as the forge would).
State is in memory (``forge.state``) and every exchange is recorded (``forge.calls``). Faults
can be injected per route (``fail``, ``hang``; ``fail(acted=True)`` loses only the answer of a
call the forge acted on) to exercise client and job retries, and ``on_call`` runs a test's
action around a route's call (a push landing between two requests). Test helpers create repos,
push commits, open PRs, comment as users, and deliver signed webhooks to registered hooks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes._threaded_uvicorn import ThreadedUvicorn
from tests.fakes.forge_api import API_ROUTES
from tests.fakes.forge_git import FileSpec
from tests.fakes.forge_routes import Auth, Call, RouteSpec, error_response
from tests.fakes.forge_state import (
    ForgeError,
    ForgeState,
    HookRecord,
    IssueCommentRecord,
    PullRecord,
    RepoRecord,
    UserRecord,
)
from tests.fakes.forge_web import WEB_ROUTES
from tests.fakes.forge_webhooks import (
    Delivery,
    deliver,
    hook_wants,
    issue_comment_payload,
    pull_request_payload,
    review_comment_payload,
)

__all__ = [
    "GLOBAL_STATUSES",
    "INJECTABLE_STATUSES",
    "CallHook",
    "FakeForge",
    "Fault",
    "RecordedCall",
    "spec_path",
]

# Statuses any route may answer, outside its own declared set, and why.
GLOBAL_STATUSES: dict[int, str] = {
    401: "auth middleware: missing or wrong credentials (Gitea documents it globally)",
    403: "reqRepoWriter/reqRepoAdmin middleware: the token's user lacks the permission",
    422: "binding middleware: a body that is not valid JSON or misses required fields",
}
# Statuses a test may inject to imitate an overloaded forge or a proxy in front of it.
INJECTABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_HANG_LIMIT_S = 60.0
_SPEC_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclass
class Fault:
    """Answer the next ``times`` matching calls with ``status`` (or hang until the client quits)."""

    method: str | None
    path: str | None
    status: int
    times: int
    retry_after: str | None = None
    hang: bool = False
    acted: bool = False  # the forge did what was asked; only its answer is replaced

    def matches(self, spec: RouteSpec) -> bool:
        return (self.method is None or self.method == spec.method) and (
            self.path is None or self.path == spec_path(spec)
        )


@dataclass
class CallHook:
    """Run ``before``/``after`` around the next ``times`` calls of a route (as a push that lands
    just before the forge reads its refs, or just after it answered)."""

    method: str
    path: str
    before: Callable[[], object] | None
    after: Callable[[], object] | None
    times: int


@dataclass
class RecordedCall:
    """One exchange, for assertions (``json`` is the decoded JSON answer, when there was one)."""

    method: str
    route: str
    path: str
    query: dict[str, str]
    status: int
    headers: Mapping[str, str]
    json: Any = None
    injected: bool = False
    request_json: Any = None


def spec_path(spec: RouteSpec) -> str:
    """The route's path without converters, e.g. ``/repos/{owner}/{repo}/pulls/{index}``."""
    return _SPEC_PARAM.sub(r"{\1}", spec.path)


class FakeForge:
    """The fake. Use as a context manager or call ``start()``/``stop()``."""

    def __init__(self, root: Path, *, bot_login: str = "auto-review") -> None:
        self.state = ForgeState(root)
        self.calls: list[RecordedCall] = []
        self.violations: list[str] = []
        self.deliveries: list[Delivery] = []
        self._faults: list[Fault] = []
        self._hooks: list[CallHook] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.routes: list[RouteSpec] = [*API_ROUTES, *WEB_ROUTES]
        self.app = Starlette(routes=[self._starlette_route(s) for s in self.routes])
        self._server = ThreadedUvicorn(self.app)
        self.url = self._server.url
        self.api_url = f"{self.url}/api/v1"
        self.bot = self.add_user(bot_login)
        self.bot_token = self.token_for(bot_login)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeForge:
        """Serve; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Release hanging calls and stop serving (idempotent)."""
        self._stopping.set()
        self._server.stop()

    def __enter__(self) -> FakeForge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- users and repositories ---------------------------------------------------------------
    def add_user(self, login: str, *, password: str = "", is_admin: bool = False) -> UserRecord:
        """A user (idempotent by login)."""
        return self.state.add_user(login, password=password, is_admin=is_admin)

    def token_for(self, login: str, *, name: str | None = None) -> str:
        """A new API token for ``login`` with scope ``all``."""
        self.add_user(login)
        index = sum(1 for t in self.state.tokens if t.owner == login)
        return self.state.add_token(login, name or f"test-{index}", ["all"]).sha1

    def create_repo(
        self,
        full_name: str,
        files: Mapping[str, FileSpec],
        *,
        private: bool = False,
        default_branch: str = "main",
        bot_permission: str | None = "write",
    ) -> RepoRecord:
        """A repository with one commit of ``files``; the bot gets ``bot_permission`` on it."""
        owner, _, name = full_name.partition("/")
        repo = self.state.create_repo(
            owner, name, files, private=private, default_branch=default_branch
        )
        if bot_permission is not None:
            repo.collaborators[self.bot.login] = bot_permission
        return repo

    def repo(self, full_name: str) -> RepoRecord:
        """The repository record."""
        owner, _, name = full_name.partition("/")
        return self.state.repo(owner, name)

    def push(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, FileSpec],
        *,
        message: str = "change",
        from_branch: str | None = None,
        sender: str | None = None,
    ) -> str:
        """Commit ``files`` onto ``branch`` (created from ``from_branch`` or the default branch);
        open PRs with this head get a ``synchronized`` webhook."""
        repo = self.repo(full_name)
        existing = repo.git.resolve(f"refs/heads/{branch}")
        parent = existing or repo.git.resolve(f"refs/heads/{from_branch or repo.default_branch}")
        sha = repo.git.commit(branch, files, message=message, parent=parent)
        if existing is not None:
            for pull in list(repo.pulls.values()):
                if pull.state == "open" and pull.head_ref == branch:
                    pull.updated_at = self.state.now()
                    self._fire_pull(repo, pull, "synchronized", sender or pull.user)
        return sha

    def open_pull(
        self,
        full_name: str,
        *,
        head: str,
        base: str | None = None,
        title: str = "A change",
        body: str = "",
        author: str | None = None,
    ) -> PullRecord:
        """Open PR ``base <- head`` (an ``opened`` webhook goes to registered hooks)."""
        repo = self.repo(full_name)
        pull = self.state.open_pull(
            repo,
            head=head,
            base=base or repo.default_branch,
            title=title,
            body=body,
            user=author or repo.owner,
        )
        self._fire_pull(repo, pull, "opened", pull.user)
        return pull

    def close_pull(self, full_name: str, number: int, *, merged: bool = False) -> None:
        """Close or merge a PR."""
        repo = self.repo(full_name)
        pull = self.state.pull(repo, number)
        self.state.close_pull(repo, pull, merged=merged)
        self._fire_pull(repo, pull, "closed", pull.user)

    def comment(self, full_name: str, number: int, body: str, *, author: str) -> IssueCommentRecord:
        """``author`` writes a PR conversation comment (delivered as ``issue_comment``)."""
        repo = self.repo(full_name)
        self.add_user(author)
        comment = self.state.add_issue_comment(repo, number, author, body)
        pull = self.state.pull(repo, number)
        payload = issue_comment_payload(
            self.state, repo, pull, comment, action="created", sender=author, base=self.url
        )
        self._fire(repo, "pull_request_comment", payload)
        return comment

    def review_comment_event(
        self, full_name: str, number: int, content: str, *, author: str
    ) -> list[Delivery]:
        """Deliver an inline-review-comment event (``pull_request_comment``) from ``author``."""
        repo = self.repo(full_name)
        self.add_user(author)
        pull = self.state.pull(repo, number)
        payload = review_comment_payload(
            self.state, repo, pull, content=content, sender=author, base=self.url
        )
        return self._fire(repo, "pull_request_review_comment", payload)

    def request_review(
        self, full_name: str, number: int, reviewer: str, *, by: str
    ) -> list[Delivery]:
        """``by`` asks ``reviewer`` to review (``review_requested``, event type
        ``pull_request_review_request``, as Forgejo's ``POST .../requested_reviewers`` sends)."""
        repo = self.repo(full_name)
        for login in (reviewer, by):
            self.add_user(login)
        pull = self.state.pull(repo, number)
        # Forgejo records the request as a comment, which moves the PR's updated_at.
        pull.updated_at = self.state.now()
        payload = pull_request_payload(
            self.state,
            repo,
            pull,
            action="review_requested",
            sender=by,
            base=self.url,
            requested_reviewer=reviewer,
        )
        return self._fire(repo, "pull_request_review_request", payload)

    # -- webhooks -----------------------------------------------------------------------------
    def add_hook(
        self, full_name: str, url: str, *, secret: str, events: list[str] | None = None
    ) -> HookRecord:
        """Register an active Forgejo hook (as ``POST /hooks`` would) for ``events``."""
        hook = HookRecord(
            self.state.next_id("hook"),
            "forgejo",
            {"url": url, "content_type": "json", "secret": secret},
            events or ["pull_request", "issue_comment"],
            True,
            self.state.now(),
            "*",
        )
        self.repo(full_name).hooks.append(hook)
        return hook

    def pull_request_payload(self, full_name: str, number: int, *, action: str) -> dict[str, Any]:
        """A ``pull_request`` payload for an existing PR (for hand-made deliveries)."""
        repo = self.repo(full_name)
        pull = self.state.pull(repo, number)
        return pull_request_payload(
            self.state, repo, pull, action=action, sender=pull.user, base=self.url
        )

    def deliver(
        self, url: str, event_type: str, payload: Mapping[str, Any], secret: str
    ) -> Delivery:
        """Deliver one signed webhook to ``url`` and record it."""
        delivery = deliver(url, event_type, payload, secret)
        self.deliveries.append(delivery)
        return delivery

    def _fire_pull(self, repo: RepoRecord, pull: PullRecord, action: str, sender: str) -> None:
        payload = pull_request_payload(
            self.state, repo, pull, action=action, sender=sender, base=self.url
        )
        self._fire(
            repo, "pull_request_sync" if action == "synchronized" else "pull_request", payload
        )

    def _fire(
        self, repo: RepoRecord, event_type: str, payload: Mapping[str, Any]
    ) -> list[Delivery]:
        sent = []
        for hook in list(repo.hooks):
            if hook.active and hook_wants(hook.events, event_type):
                secret = hook.config.get("secret", "")
                sent.append(self.deliver(hook.config["url"], event_type, payload, secret))
        return sent

    # -- faults -------------------------------------------------------------------------------
    def fail(
        self,
        path: str | None,
        *,
        status: int = 500,
        times: int = 1,
        method: str | None = None,
        retry_after: str | None = None,
        acted: bool = False,
    ) -> None:
        """The next ``times`` calls to ``path`` (spec form, ``None`` = any) answer ``status``.

        With ``acted`` the forge first does what each call asks (creates the review, say), as
        when a proxy gives up on an answer the forge was still sending: only the answer is lost.
        """
        if status not in INJECTABLE_STATUSES:
            raise ValueError(f"inject one of {sorted(INJECTABLE_STATUSES)}")
        self._add_fault(Fault(method, path, status, times, retry_after, acted=acted))

    def hang(self, path: str | None, *, times: int = 1, method: str | None = None) -> None:
        """The next ``times`` calls to ``path`` never answer (until the client gives up)."""
        self._add_fault(Fault(method, path, 504, times, hang=True))

    def on_call(
        self,
        path: str,
        *,
        before: Callable[[], object] | None = None,
        after: Callable[[], object] | None = None,
        method: str = "GET",
        times: int = 1,
    ) -> CallHook:
        """Run ``before`` ahead of the next ``times`` calls to ``path`` (spec form) and ``after``
        once each is answered, before the client reads the answer."""
        if path not in {spec_path(s) for s in self.routes}:
            raise ValueError(f"no such route: {path}")
        hook = CallHook(method, path, before, after, times)
        with self._lock:
            self._hooks.append(hook)
        return hook

    def _take_hook(self, spec: RouteSpec) -> CallHook | None:
        with self._lock:
            for hook in self._hooks:
                if hook.times > 0 and (hook.method, hook.path) == (spec.method, spec_path(spec)):
                    hook.times -= 1
                    return hook
        return None

    def _add_fault(self, fault: Fault) -> None:
        if fault.path is not None and fault.path not in {spec_path(s) for s in self.routes}:
            raise ValueError(f"no such route: {fault.path}")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, spec: RouteSpec) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(spec):
                    fault.times -= 1
                    return fault
        return None

    def calls_to(self, path: str, method: str = "GET") -> list[RecordedCall]:
        """Recorded calls of one route (spec form)."""
        return [c for c in self.calls if c.route == f"{method} {path}"]

    # -- dispatch -----------------------------------------------------------------------------
    def _starlette_route(self, spec: RouteSpec) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self._dispatch(spec, request)

        return Route(spec.full_path, endpoint, methods=[spec.method])

    async def _dispatch(self, spec: RouteSpec, request: Request) -> Response:
        body = await request.body()
        fault = self._take_fault(spec)
        injected = fault is not None
        hook = self._take_hook(spec)
        if hook is not None and hook.before is not None:
            await run_in_threadpool(hook.before)
        if fault is None or fault.acted:
            response = await self._handle(spec, request, body)
        if fault is not None:
            response = await self._answer_fault(fault)
        if hook is not None and hook.after is not None:
            await run_in_threadpool(hook.after)
        self._check(spec, response.status_code, injected)
        self._record(spec, request, response, injected, body)
        return response

    async def _answer_fault(self, fault: Fault) -> Response:
        if fault.hang:
            waited = 0.0
            while not self._stopping.is_set() and waited < _HANG_LIMIT_S:
                await asyncio.sleep(0.02)
                waited += 0.02
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return error_response(fault.status, "injected failure", self.url, headers)

    async def _handle(self, spec: RouteSpec, request: Request, body: bytes) -> Response:
        user, refused = self._authenticate(spec, request)
        if refused is not None:
            return refused
        call = Call(
            request=request,
            state=self.state,
            user=user,
            params=dict(request.path_params),
            query=request.query_params,
            body=body,
            base=self.url,
        )
        try:
            return await run_in_threadpool(spec.handler, call)
        except ForgeError as exc:
            return error_response(exc.status, exc.message, self.url)

    def _authenticate(
        self, spec: RouteSpec, request: Request
    ) -> tuple[UserRecord | None, Response | None]:
        if spec.auth is Auth.WEB:
            return None, None  # whatever the header says
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        user: UserRecord | None = None
        by_password = False
        if scheme in ("token", "bearer") and spec.auth is not Auth.BASIC:
            user = self.state.user_for_token(value)
        elif scheme == "basic":
            login, password = _basic(value)
            user = self.state.user_for_password(login, password)
            by_password = user is not None
            if user is None and spec.auth is not Auth.BASIC:
                user = self.state.user_for_token(password)
        if spec.auth is Auth.OPTIONAL and not header:
            return None, None
        if user is None or (spec.auth is Auth.BASIC and not by_password):
            if spec.auth is Auth.GIT:
                return None, PlainTextResponse(
                    "Unauthorized\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="Gitea"'},
                )
            return None, error_response(401, "token is required", self.url)
        return user, None

    def _check(self, spec: RouteSpec, status: int, injected: bool) -> None:
        allowed = spec.statuses | GLOBAL_STATUSES.keys()
        if status not in allowed and not (injected and status in INJECTABLE_STATUSES):
            self.violations.append(f"{spec.key} answered undeclared status {status}")

    def _record(
        self, spec: RouteSpec, request: Request, response: Response, injected: bool, body: bytes
    ) -> None:
        data = sent = None
        if response.media_type == "application/json" and response.body:
            data = json.loads(bytes(response.body))
        if request.headers.get("content-type", "").startswith("application/json") and body:
            try:
                sent = json.loads(body)
            except ValueError:
                sent = None
        self.calls.append(
            RecordedCall(
                spec.method,
                f"{spec.method} {spec_path(spec)}",
                request.url.path,
                dict(request.query_params),
                response.status_code,
                dict(response.headers),
                data,
                injected,
                sent,
            )
        )


def _basic(value: str) -> tuple[str, str]:
    try:
        login, _, password = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return login, password

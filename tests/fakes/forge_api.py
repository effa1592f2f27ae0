"""Handlers of the fake forge's ``/api/v1`` routes and the routing table ``API_ROUTES``.

Behaviour follows Gitea 1.22 / Forgejo (routers/api/v1): statuses, permission checks and JSON
shapes. Each handler is synchronous (git runs as a subprocess) and is run in a worker thread.
"""

from __future__ import annotations

import re
from datetime import datetime

from starlette.responses import Response

from tests.fakes.forge_json import (
    FORGE_VERSION,
    changed_file_json,
    comment_json,
    commit_json,
    hook_json,
    pull_json,
    repo_json,
    review_comment_json,
    review_json,
    status_json,
    token_json,
    user_json,
)
from tests.fakes.forge_routes import Auth, Call, RouteSpec, json_response, page_of
from tests.fakes.forge_state import (
    ForgeError,
    HookRecord,
    IssueCommentRecord,
    PullRecord,
    RepoRecord,
)

__all__ = ["API_ROUTES"]

_WRITE = ("write", "admin", "owner")
_ADMIN = ("admin", "owner")
_HOOK_TYPES = {"forgejo", "gitea", "gogs", "slack", "discord", "dingtalk", "telegram", "msteams"}
_REF = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")


def _repo(call: Call, need: tuple[str, ...] = ()) -> tuple[RepoRecord, str]:
    repo = call.state.repo(call.params["owner"], call.params["repo"])
    perm = call.state.permission(repo, call.user.login if call.user else None)
    if perm == "none":
        raise ForgeError(404, "repository does not exist")  # private repos are invisible
    if need and perm not in need:
        raise ForgeError(403, "permission denied")
    return repo, perm


def _pull(call: Call, need: tuple[str, ...] = ()) -> tuple[RepoRecord, str, PullRecord]:
    repo, perm = _repo(call, need)
    return repo, perm, call.state.pull(repo, int(call.params["index"]))


# -- server and user -------------------------------------------------------------------------
def get_version(call: Call) -> Response:
    return json_response({"version": FORGE_VERSION})


def get_user(call: Call) -> Response:
    assert call.user is not None
    return json_response(user_json(call.user, call.base))


def get_repo(call: Call) -> Response:
    repo, perm = _repo(call)
    return json_response(repo_json(call.state, repo, call.base, perm))


# -- pull requests ---------------------------------------------------------------------------
def list_pulls(call: Call) -> Response:
    repo, perm = _repo(call)
    wanted = call.query.get("state", "open")
    if wanted not in ("open", "closed", "all"):
        wanted = "open"
    pulls = [
        p
        for p in sorted(repo.pulls.values(), key=lambda p: -p.number)
        if wanted in ("all", p.state)
    ]
    chunk, headers = page_of(call, pulls)
    data = [pull_json(call.state, repo, p, call.base, perm) for p in chunk]
    return json_response(data, headers=headers)


def get_pull(call: Call) -> Response:
    repo, perm, pull = _pull(call)
    return json_response(pull_json(call.state, repo, pull, call.base, perm))


def edit_pull(call: Call) -> Response:
    repo, perm, pull = _pull(call)
    if perm not in _WRITE and call.login != pull.user:
        raise ForgeError(403, "must be a writer or the poster")
    body = call.json()
    with call.state.lock:
        if isinstance(body.get("title"), str):
            if not body["title"].strip():
                raise ForgeError(422, "title cannot be empty")
            pull.title = body["title"]
        if isinstance(body.get("body"), str):
            pull.body = body["body"]
        if body.get("state") == "closed" and pull.state == "open":
            call.state.close_pull(repo, pull)
        pull.updated_at = call.state.now()
    # Gitea answers an edit with 201 Created (routers/api/v1/repo/pull.go EditPullRequest).
    return json_response(pull_json(call.state, repo, pull, call.base, perm), status=201)


def pull_diff(call: Call) -> Response:
    repo, _, pull = _pull(call)
    kind = call.params["diffType"]
    if kind == "diff":
        text = call.state.pull_diff(repo, pull)
    elif kind == "patch":
        base, head = call.state.merge_base(repo, pull), call.state.head_sha(repo, pull)
        text = repo.git.git("format-patch", "--stdout", f"{base}..{head}")
    else:
        raise ForgeError(404, "unknown diff type")
    return Response(text, media_type="text/plain")


def pull_files(call: Call) -> Response:
    repo, _, pull = _pull(call)
    head = call.state.head_sha(repo, pull)
    entries = repo.git.changed_files(call.state.merge_base(repo, pull), head)
    chunk, headers = page_of(call, entries)
    return json_response(
        [changed_file_json(e, repo, head, call.base) for e in chunk], headers=headers
    )


# -- reviews ---------------------------------------------------------------------------------
def list_reviews(call: Call) -> Response:
    repo, _, pull = _pull(call)
    reviews = [r for r in repo.reviews if r.number == pull.number]
    chunk, headers = page_of(call, reviews)
    return json_response(
        [review_json(call.state, repo, r, call.base) for r in chunk], headers=headers
    )


def create_review(call: Call) -> Response:
    repo, _, pull = _pull(call)
    body = call.json()
    comments = body.get("comments") or []
    if not isinstance(comments, list) or not all(isinstance(c, dict) for c in comments):
        raise ForgeError(422, "comments must be a list of objects")
    review = call.state.create_review(
        repo,
        pull,
        user=call.login,
        event=str(body.get("event") or ""),
        body=str(body.get("body") or ""),
        commit_id=str(body.get("commit_id") or ""),
        comments=comments,
    )
    return json_response(review_json(call.state, repo, review, call.base))


def list_review_comments(call: Call) -> Response:
    repo, _, pull = _pull(call)
    review_id = int(call.params["id"])
    for review in repo.reviews:
        if review.id == review_id and review.number == pull.number:
            return json_response(
                [
                    review_comment_json(call.state, repo, review, c, call.base)
                    for c in review.comments
                ]
            )
    raise ForgeError(404, "review does not exist")


# -- issue comments --------------------------------------------------------------------------
def _time_param(call: Call, name: str) -> datetime | None:
    raw = call.query.get(name)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ForgeError(422, f"{name} is not RFC 3339") from exc


def list_issue_comments(call: Call) -> Response:
    # Gitea 1.22 lists every comment (its spec has no paging here); newer Forgejo pages. The
    # fake pages only when asked (``page`` or ``limit`` given), so both client styles work.
    repo, _, pull = _pull(call)
    since, before = _time_param(call, "since"), _time_param(call, "before")
    comments = [
        c
        for c in repo.issue_comments
        if c.number == pull.number
        and (since is None or c.updated_at >= since)
        and (before is None or c.updated_at < before)
    ]
    headers = {"X-Total-Count": str(len(comments))}
    if "page" in call.query or "limit" in call.query:
        comments, headers = page_of(call, comments)
    return json_response(
        [comment_json(call.state, repo, c, call.base) for c in comments], headers=headers
    )


def create_issue_comment(call: Call) -> Response:
    repo, _, pull = _pull(call)
    body = call.json().get("body")
    if not isinstance(body, str):
        raise ForgeError(422, "body is required")
    comment = call.state.add_issue_comment(repo, pull.number, call.login, body)
    return json_response(comment_json(call.state, repo, comment, call.base), status=201)


def _issue_comment(call: Call, repo: RepoRecord) -> IssueCommentRecord:
    comment_id = int(call.params["id"])
    for comment in repo.issue_comments:
        if comment.id == comment_id:
            return comment
    raise ForgeError(404, "comment does not exist")


def get_issue_comment(call: Call) -> Response:
    repo, _ = _repo(call)
    with call.state.lock:
        comment = _issue_comment(call, repo)
        return json_response(comment_json(call.state, repo, comment, call.base))


def edit_issue_comment(call: Call) -> Response:
    repo, perm = _repo(call)
    body = call.json().get("body")
    if not isinstance(body, str):
        raise ForgeError(422, "body is required")
    with call.state.lock:
        comment = _issue_comment(call, repo)
        if comment.user != call.login and perm not in _WRITE:
            raise ForgeError(403, "only the poster or a writer may edit")
        comment.body = body
        comment.updated_at = call.state.now()
        return json_response(comment_json(call.state, repo, comment, call.base))


def delete_issue_comment(call: Call) -> Response:
    repo, perm = _repo(call)
    with call.state.lock:
        comment = _issue_comment(call, repo)
        if comment.user != call.login and perm not in _WRITE:
            raise ForgeError(403, "only the poster or a writer may delete")
        repo.issue_comments.remove(comment)
    return Response(status_code=204)


# -- commit statuses -------------------------------------------------------------------------
def create_status(call: Call) -> Response:
    repo, _ = _repo(call, _WRITE)
    body = call.json()
    status = call.state.add_status(
        repo,
        call.params["sha"],
        state=str(body.get("state") or ""),
        context=str(body.get("context") or "default"),
        description=str(body.get("description") or ""),
        target_url=str(body.get("target_url") or ""),
        creator=call.login,
    )
    return json_response(status_json(call.state, repo, status, call.base), status=201)


def _list_statuses(call: Call, ref: str) -> Response:
    repo, _ = _repo(call)
    if not _REF.match(ref) or ".." in ref:
        raise ForgeError(400, "invalid ref")
    sha = repo.git.resolve(ref)
    if sha is None:
        raise ForgeError(404, "ref does not exist")
    found = sorted((s for s in repo.statuses if s.sha == sha), key=lambda s: -s.id)
    chunk, headers = page_of(call, found)
    return json_response(
        [status_json(call.state, repo, s, call.base) for s in chunk], headers=headers
    )


def list_statuses_by_sha(call: Call) -> Response:
    return _list_statuses(call, call.params["sha"])


def list_statuses_by_ref(call: Call) -> Response:
    return _list_statuses(call, call.params["ref"])


# -- hooks -----------------------------------------------------------------------------------
def list_hooks(call: Call) -> Response:
    repo, _ = _repo(call, _ADMIN)
    chunk, headers = page_of(call, repo.hooks)
    return json_response([hook_json(h) for h in chunk], headers=headers)


def create_hook(call: Call) -> Response:
    repo, _ = _repo(call, _ADMIN)
    body = call.json()
    config = body.get("config")
    hook_type = body.get("type")
    if hook_type not in _HOOK_TYPES or not isinstance(config, dict):
        raise ForgeError(422, "invalid hook type or config")
    url, content_type = config.get("url"), config.get("content_type")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ForgeError(422, "invalid url")
    if content_type not in ("json", "form"):
        raise ForgeError(422, "invalid content type")
    events = body.get("events") or ["push"]
    hook = HookRecord(
        call.state.next_id("hook"),
        str(hook_type),
        {str(k): str(v) for k, v in config.items()},
        [str(e) for e in events],
        bool(body.get("active", False)),
        call.state.now(),
        str(body.get("branch_filter") or "*"),
    )
    with call.state.lock:
        repo.hooks.append(hook)
    return json_response(hook_json(hook), status=201)


def _hook(call: Call) -> tuple[RepoRecord, HookRecord]:
    repo, _ = _repo(call, _ADMIN)
    hook_id = int(call.params["id"])
    for hook in repo.hooks:
        if hook.id == hook_id:
            return repo, hook
    raise ForgeError(404, "hook does not exist")


def get_hook(call: Call) -> Response:
    return json_response(hook_json(_hook(call)[1]))


def delete_hook(call: Call) -> Response:
    repo, hook = _hook(call)
    with call.state.lock:
        repo.hooks.remove(hook)
    return Response(status_code=204)


# -- tokens ----------------------------------------------------------------------------------
def _token_owner(call: Call) -> str:
    username = str(call.params["username"])
    assert call.user is not None
    if call.user.login != username and not call.user.is_admin:
        raise ForgeError(403, "cannot manage another user's tokens")
    return username


def list_tokens(call: Call) -> Response:
    owner = _token_owner(call)
    tokens = [t for t in call.state.tokens if t.owner == owner]
    chunk, headers = page_of(call, tokens)
    return json_response([token_json(t, reveal=False) for t in chunk], headers=headers)


def create_token(call: Call) -> Response:
    owner = _token_owner(call)
    body = call.json()
    name, scopes = body.get("name"), body.get("scopes") or []
    if not isinstance(name, str) or not name.strip():
        raise ForgeError(422, "name is required")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ForgeError(422, "scopes must be a list of strings")
    token = call.state.add_token(owner, name, scopes)
    return json_response(token_json(token, reveal=True), status=201)


# -- contents, permission, compare -----------------------------------------------------------
def raw_file(call: Call) -> Response:
    repo, _ = _repo(call)
    ref = call.query.get("ref") or repo.default_branch
    data = repo.git.read_file(ref, call.params["filepath"])
    if data is None:
        raise ForgeError(404, "file does not exist")
    return Response(data, media_type="application/octet-stream")


def collaborator_permission(call: Call) -> Response:
    repo, perm = _repo(call)
    login = call.params["collaborator"]
    # Gitea 1.22: only site admins, repo admins and the user themselves may ask.
    assert call.user is not None
    if not call.user.is_admin and call.user.login != login and perm not in _ADMIN:
        raise ForgeError(403, "only admins can query other users' permissions")
    user = call.state.users.get(login)
    if user is None:
        raise ForgeError(404, "user does not exist")
    granted = call.state.permission(repo, login)
    return json_response(
        {"permission": granted, "role_name": granted, "user": user_json(user, call.base)}
    )


def compare(call: Call) -> Response:
    repo, _ = _repo(call)
    base_ref, sep, head_ref = call.params["basehead"].partition("...")
    base, head = repo.git.resolve(base_ref) if sep else None, repo.git.resolve(head_ref)
    if base is None or head is None:
        raise ForgeError(404, "base or head does not exist")
    shas = repo.git.commits_between(base, head)
    return json_response(
        {"total_commits": len(shas), "commits": [commit_json(repo, s, call.base) for s in shas]}
    )


_R = "/repos/{owner}/{repo}"


def _route(method: str, path: str, handler: object, *statuses: int, **kw: object) -> RouteSpec:
    return RouteSpec(method, path, handler, frozenset(statuses), **kw)  # type: ignore[arg-type]


API_ROUTES: list[RouteSpec] = [
    _route("GET", "/version", get_version, 200, auth=Auth.OPTIONAL),
    _route("GET", "/user", get_user, 200),
    _route("GET", _R, get_repo, 200, 404),
    _route("GET", f"{_R}/pulls", list_pulls, 200, 404),
    # Declared before /pulls/{index}; the int converter keeps "1.diff" out of that route anyway.
    _route("GET", f"{_R}/pulls/{{index:int}}.{{diffType}}", pull_diff, 200, 404),
    _route("GET", f"{_R}/pulls/{{index:int}}", get_pull, 200, 404),
    _route("PATCH", f"{_R}/pulls/{{index:int}}", edit_pull, 201, 403, 404, 422),
    _route("GET", f"{_R}/pulls/{{index:int}}/files", pull_files, 200, 404),
    _route("GET", f"{_R}/pulls/{{index:int}}/reviews", list_reviews, 200, 404),
    _route("POST", f"{_R}/pulls/{{index:int}}/reviews", create_review, 200, 404, 422),
    _route(
        "GET",
        f"{_R}/pulls/{{index:int}}/reviews/{{id:int}}/comments",
        list_review_comments,
        200,
        404,
    ),
    _route("GET", f"{_R}/issues/{{index:int}}/comments", list_issue_comments, 200, 404),
    _route("POST", f"{_R}/issues/{{index:int}}/comments", create_issue_comment, 201, 404),
    _route("GET", f"{_R}/issues/comments/{{id:int}}", get_issue_comment, 200, 404),
    _route("PATCH", f"{_R}/issues/comments/{{id:int}}", edit_issue_comment, 200, 403, 404),
    _route("DELETE", f"{_R}/issues/comments/{{id:int}}", delete_issue_comment, 204, 403, 404),
    _route("POST", f"{_R}/statuses/{{sha}}", create_status, 201, 400, 404),
    _route("GET", f"{_R}/statuses/{{sha}}", list_statuses_by_sha, 200, 400, 404),
    _route("GET", f"{_R}/commits/{{ref}}/statuses", list_statuses_by_ref, 200, 400, 404),
    _route("GET", f"{_R}/hooks", list_hooks, 200, 404),
    _route("POST", f"{_R}/hooks", create_hook, 201, 404),
    _route("GET", f"{_R}/hooks/{{id:int}}", get_hook, 200, 404),
    _route("DELETE", f"{_R}/hooks/{{id:int}}", delete_hook, 204, 404),
    _route("GET", "/users/{username}/tokens", list_tokens, 200, 403, auth=Auth.BASIC),
    _route("POST", "/users/{username}/tokens", create_token, 201, 400, 403, auth=Auth.BASIC),
    _route("GET", f"{_R}/raw/{{filepath:path}}", raw_file, 200, 404),
    _route("GET", f"{_R}/media/{{filepath:path}}", raw_file, 200, 404),
    _route(
        "GET",
        f"{_R}/collaborators/{{collaborator}}/permission",
        collaborator_permission,
        200,
        403,
        404,
    ),
    _route("GET", f"{_R}/compare/{{basehead:path}}", compare, 200, 404),
]

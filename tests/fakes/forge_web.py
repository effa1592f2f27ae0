"""Routes of the fake forge outside ``/api/v1``: git smart HTTP and the web compare diff.

Git requests go to the real ``git http-backend`` CGI, so clones and fetches are real; the token
is required even for public repositories, and pushing needs write access. Like Gitea (its global
git config, for partial clones), upload-pack serves any object by SHA, even one no ref reaches.
The compare page is a web route: anonymous whatever the request's token (``Auth.WEB``).
"""

from __future__ import annotations

import subprocess

from starlette.responses import Response

from tests.fakes.forge_git import git_env
from tests.fakes.forge_records import ForgeError, RepoRecord
from tests.fakes.forge_routes import Auth, Call, RouteSpec

__all__ = ["WEB_ROUTES"]

_WRITERS = ("write", "admin", "owner")
# What Gitea's modules/git syncGitConfig sets unless partial clone is disabled.
_UPLOADPACK_CONFIG = {
    "GIT_CONFIG_COUNT": "2",
    "GIT_CONFIG_KEY_0": "uploadpack.allowFilter",
    "GIT_CONFIG_VALUE_0": "true",
    "GIT_CONFIG_KEY_1": "uploadpack.allowAnySHA1InWant",
    "GIT_CONFIG_VALUE_1": "true",
}


def _visible_repo(call: Call) -> RepoRecord:
    repo = call.state.repo(call.params["owner"], call.params["repo"])
    if call.state.permission(repo, call.user.login if call.user else None) == "none":
        raise ForgeError(404, "repository does not exist")
    return repo


def _compare_diff(call: Call) -> Response:
    repo = _visible_repo(call)
    basehead = call.params["basehead"]
    if not basehead.endswith(".diff"):
        raise ForgeError(404, "only the .diff form is served")
    base_ref, sep, head_ref = basehead.removesuffix(".diff").partition("...")
    base, head = repo.git.resolve(base_ref) if sep else None, repo.git.resolve(head_ref)
    if base is None or head is None:
        raise ForgeError(404, "base or head does not exist")
    text = repo.git.diff(repo.git.merge_base(base, head), head)
    return Response(text, media_type="text/plain")


def _git_http(call: Call) -> Response:
    repo = _visible_repo(call)
    rest = call.params["rest"]
    service = call.query.get("service", "")
    pushing = "git-receive-pack" in (rest, service)
    assert call.user is not None
    if pushing and call.state.permission(repo, call.user.login) not in (
        "write",
        "admin",
        "owner",
    ):
        raise ForgeError(403, "push denied")
    headers = call.request.headers
    env = {
        **git_env(call.state.root / "home"),
        "GIT_PROJECT_ROOT": str(call.state.root / "git"),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.owner}/{repo.name}.git/{rest}",
        "REQUEST_METHOD": call.request.method,
        "QUERY_STRING": call.request.url.query,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(call.body)),
        "REMOTE_USER": call.user.login,
        "REMOTE_ADDR": "127.0.0.1",
        "GIT_PROTOCOL": headers.get("git-protocol", ""),
        "HTTP_CONTENT_ENCODING": headers.get("content-encoding", ""),
        **_UPLOADPACK_CONFIG,
    }
    proc = subprocess.run(
        ["git", "http-backend"], input=call.body, capture_output=True, env=env,
        check=False, timeout=120,
    )  # fmt: skip
    head, _, payload = proc.stdout.partition(b"\r\n\r\n")
    status, out_headers = 200, {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            out_headers[name] = value.strip()
    if proc.returncode != 0 and status == 200:
        raise ForgeError(404, "git http-backend failed")
    return Response(payload, status_code=status, headers=out_headers)


_WHY_GIT = "git smart HTTP (git http-backend), not part of the REST API"
_WHY_COMPARE = "web UI route; the REST compare API has no unified-diff form"
WEB_ROUTES: list[RouteSpec] = [
    RouteSpec(
        "GET", "/{owner}/{repo}.git/{rest:path}", _git_http,
        frozenset({200, 403, 404}), Auth.GIT, api=False, why_not_api=_WHY_GIT,
    ),
    RouteSpec(
        "POST", "/{owner}/{repo}.git/{rest:path}", _git_http,
        frozenset({200, 403, 404}), Auth.GIT, api=False, why_not_api=_WHY_GIT,
    ),
    RouteSpec(
        "GET", "/{owner}/{repo}/compare/{basehead:path}", _compare_diff,
        frozenset({200, 404}), Auth.WEB, api=False, why_not_api=_WHY_COMPARE,
    ),
]  # fmt: skip

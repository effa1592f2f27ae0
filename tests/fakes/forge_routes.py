"""The fake forge's routing vocabulary: one ``RouteSpec`` per (method, path), and ``Call``.

A route declares every status it may answer; the dispatcher refuses to send any other, so the
contract test can compare the declared sets with the Gitea spec and trust them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.forge_state import ForgeError, ForgeState, UserRecord

__all__ = [
    "API_PREFIX",
    "Auth",
    "Call",
    "Handler",
    "RouteSpec",
    "error_response",
    "json_response",
    "page_of",
]

API_PREFIX = "/api/v1"
# Gitea's setting.API.DefaultPagingNum (the maximum lives in ``ForgeState.max_page_size``).
DEFAULT_PAGE_SIZE = 30


class Auth(Enum):
    """What a route accepts as credentials."""

    TOKEN = "token"  # API: token/Bearer header, or Basic with password or token
    BASIC = "basic"  # password Basic auth only (token minting)
    OPTIONAL = "optional"  # anonymous allowed (version, web routes)
    GIT = "git"  # git smart HTTP: token header or Basic with token/password; 401 + challenge
    # Web UI pages: always anonymous. Gitea's and Forgejo's auth (services/auth) honour an API
    # token on a web route only for git, raw/, releases/download, attachments, LFS, archives
    # and feeds; elsewhere the header is ignored, so a private repository is a 404.
    WEB = "web"


@dataclass
class Call:
    """One request as a handler sees it."""

    request: Request
    state: ForgeState
    user: UserRecord | None
    params: Mapping[str, Any]
    query: QueryParams
    body: bytes
    base: str

    def json(self) -> dict[str, Any]:
        """The JSON object body; 422 when it is not one (Gitea's binding middleware)."""
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise ForgeError(422, "request body is not JSON") from exc
        if not isinstance(data, dict):
            raise ForgeError(422, "request body must be a JSON object")
        return data

    @property
    def login(self) -> str:
        """The authenticated user's login (routes with auth always have one)."""
        if self.user is None:
            raise ForgeError(401, "token is required")
        return self.user.login


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class RouteSpec:
    """A served route. ``path`` is a Starlette template; ``api`` routes live under /api/v1."""

    method: str
    path: str
    handler: Handler
    statuses: frozenset[int]
    auth: Auth = Auth.TOKEN
    api: bool = True
    why_not_api: str = ""

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path if self.api else self.path

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer."""
    return JSONResponse(data, status_code=status, headers=dict(headers or {}))


def error_response(
    status: int, message: str, base: str, headers: Mapping[str, str] | None = None
) -> Response:
    """Gitea's ``APIError`` body."""
    return JSONResponse(
        {"message": message, "url": f"{base}/api/swagger"},
        status_code=status,
        headers=dict(headers or {}),
    )


def page_of(call: Call, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """Slice ``items`` by ``page``/``limit`` and build Gitea's Link and X-Total-Count headers."""
    page = _int(call.query.get("page"), 1)
    limit = _int(call.query.get("limit"), DEFAULT_PAGE_SIZE)
    page = max(page, 1)
    limit = DEFAULT_PAGE_SIZE if limit <= 0 else min(limit, call.state.max_page_size)
    total = len(items)
    last = max((total + limit - 1) // limit, 1)
    url = str(call.request.url.remove_query_params(["page", "limit"]))
    sep = "&" if "?" in url else "?"

    def link(p: int, rel: str) -> str:
        return f'<{url}{sep}page={p}&limit={limit}>; rel="{rel}"'

    links = []
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = ",".join(links)
    start = (page - 1) * limit
    return items[start : start + limit], headers


def _int(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return default

"""Operator set-up against Forgejo/Gitea that needs a password rather than a token.

``create_access_token`` mints the bot's API token (``auth init``): the forge only accepts Basic
auth with the account password on ``POST /users/{name}/tokens``. The password and the Basic
credential are scrubbed from every error message; the new token is returned as ``SecretStr``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from auto_review.errors import HostError
from auto_review.hosts import _forgejo_json as fj
from auto_review.hosts._http import DEFAULT_TIMEOUT, ForgeHttp, RetryPolicy, Sleep

__all__ = ["BOT_TOKEN_SCOPES", "AccessToken", "create_access_token"]

# What the bot does with its token: read repos and PRs, post reviews and statuses (repository),
# comment on PRs (issue), and read its own account (user). Hooks need write:repository as well.
BOT_TOKEN_SCOPES = ("write:repository", "write:issue", "read:user")


@dataclass(frozen=True)
class AccessToken:
    """A freshly minted API token; ``token`` is shown by the forge only this once."""

    id: int
    name: str
    token: SecretStr
    scopes: tuple[str, ...]


async def create_access_token(
    base_url: str,
    username: str,
    password: SecretStr | str,
    name: str,
    scopes: Sequence[str] = BOT_TOKEN_SCOPES,
    *,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    sleep: Sleep = asyncio.sleep,
) -> AccessToken:
    """Mint an access token for ``username`` with Basic auth; ``HostError`` on failure."""
    secret = password.get_secret_value() if isinstance(password, SecretStr) else password
    if not secret:
        raise HostError("a password is required to create an access token")
    if not name.strip():
        raise HostError("a token name is required")
    credential = base64.b64encode(f"{username}:{secret}".encode()).decode()
    api = f"{base_url.rstrip('/')}/api/v1"
    owned = client is None
    http_client = client or httpx.AsyncClient(
        timeout=DEFAULT_TIMEOUT, follow_redirects=False, trust_env=False
    )
    try:
        http = ForgeHttp(
            http_client,
            authorization=f"Basic {credential}",
            secrets=(secret, credential),
            retry=retry or RetryPolicy(),
            sleep=sleep,
        )
        url = f"{api}/users/{fj.check_login(username)}/tokens"
        result = await http.request("POST", url, body={"name": name, "scopes": list(scopes)})
        data = result.json()
    finally:
        if owned:
            await http_client.aclose()
    token = fj.str_field(data, "sha1")
    if not token:
        raise HostError("the forge did not return the new token")
    raw_scopes = data.get("scopes") if isinstance(data, dict) else None
    return AccessToken(
        id=fj.int_field(data, "id"),
        name=fj.opt_str_field(data, "name"),
        token=SecretStr(token),
        scopes=tuple(s for s in raw_scopes or () if isinstance(s, str)),
    )

"""Registering the gateway's webhook on a repository: idempotent, with a strong secret only.

The hook is a Forgejo JSON hook on ``<gateway>/webhooks/forgejo`` for the events the gateway
handles (``WEBHOOK_EVENTS``). Registering twice reports the existing hook instead of adding a
second one (the forge would deliver every event twice). The secret is checked before any
network call and never appears in a result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from auto_review.errors import ConfigError, HostAuthError, HostNotFound
from auto_review.hosts import RepoRef, WebhookInfo
from auto_review.settings import MIN_SECRET_BYTES

__all__ = [
    "WEBHOOK_EVENTS",
    "WEBHOOK_PATH",
    "HookAdmin",
    "Registration",
    "check_webhook_secret",
    "hook_url",
    "list_webhooks",
    "register_webhook",
    "unregister_webhooks",
]

WEBHOOK_PATH = "/webhooks/forgejo"
# PR events, PR conversation comments, and inline review comments (Gitea's HookEventType
# ``pull_request_review_comment``), the three the gateway's webhook route handles.
WEBHOOK_EVENTS = ("pull_request", "issue_comment", "pull_request_review_comment")
_MIN_DISTINCT_CHARS = 8


class HookAdmin(Protocol):
    """The forge calls that manage repository hooks (``ForgejoHost`` has them)."""

    async def list_hooks(self, repo: RepoRef) -> list[WebhookInfo]: ...

    async def create_hook(
        self,
        repo: RepoRef,
        *,
        url: str,
        secret: SecretStr | str,
        events: Sequence[str] = ...,
        hook_type: str = ...,
        active: bool = ...,
    ) -> WebhookInfo: ...

    async def delete_hook(self, repo: RepoRef, hook_id: int) -> None: ...


@dataclass(frozen=True)
class Registration:
    """The hook for the gateway; ``created`` is False when it already existed."""

    hook: WebhookInfo
    created: bool


def hook_url(gateway_url: str) -> str:
    """``<gateway>/webhooks/forgejo`` for a gateway base URL (``ConfigError`` if unusable)."""
    parts = urlsplit(gateway_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--gateway-url {gateway_url!r} is not an http(s) URL",
            ("give the URL the forge reaches the gateway at, e.g. https://review.example.org",),
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("--gateway-url must not carry credentials, a query or a fragment")
    base = gateway_url.strip().rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH


def check_webhook_secret(secret: SecretStr | None) -> SecretStr:
    """The secret if it is strong enough to sign webhooks; ``ConfigError`` naming the fix."""
    fix = (
        f"set WEBHOOK_SECRET to at least {MIN_SECRET_BYTES} random bytes, "
        "e.g. `head -c 32 /dev/urandom | base64`, in the gateway's environment too"
    )
    if secret is None or not secret.get_secret_value():
        raise ConfigError("WEBHOOK_SECRET is not set", (fix,))
    value = secret.get_secret_value()
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"WEBHOOK_SECRET is shorter than {MIN_SECRET_BYTES} bytes", (fix,))
    if len(set(value)) < _MIN_DISTINCT_CHARS:
        raise ConfigError("WEBHOOK_SECRET repeats too few characters to be random", (fix,))
    return secret


@asynccontextmanager
async def _hook_admin(repo: RepoRef) -> AsyncIterator[None]:
    """Name the fix when the forge refuses hook management or cannot see the repository."""
    try:
        yield
    except HostAuthError as exc:
        raise HostAuthError(
            f"the forge refused to manage the hooks of {repo} ({exc.message}): hooks need admin "
            "rights; give the bot account admin on the repository, or have an admin add the hook",
            status=exc.status,
        ) from exc
    except HostNotFound as exc:
        raise HostNotFound(
            f"{repo} was not found ({exc.message}): check the name, and that the bot account "
            "can see the repository",
            status=exc.status,
        ) from exc


async def register_webhook(
    host: HookAdmin, repo: RepoRef, *, gateway_url: str, secret: SecretStr | None
) -> Registration:
    """Create the gateway's hook on ``repo`` unless a hook with the same URL exists."""
    strong = check_webhook_secret(secret)
    url = hook_url(gateway_url)
    async with _hook_admin(repo):
        for hook in await host.list_hooks(repo):
            if hook.url.rstrip("/") == url:
                return Registration(hook, created=False)
        hook = await host.create_hook(repo, url=url, secret=strong, events=WEBHOOK_EVENTS)
    return Registration(hook, created=True)


async def list_webhooks(host: HookAdmin, repo: RepoRef) -> list[WebhookInfo]:
    """Every hook of ``repo`` (the forge never returns their secrets)."""
    async with _hook_admin(repo):
        return await host.list_hooks(repo)


async def unregister_webhooks(
    host: HookAdmin, repo: RepoRef, *, hook_id: int | None = None, url_part: str | None = None
) -> list[WebhookInfo]:
    """Delete the hook ``hook_id``, or every hook whose URL contains ``url_part``.

    Exactly one selector must be given; ``HostNotFound`` when nothing matches.
    """
    if (hook_id is None) == (url_part is None) or url_part == "":
        raise ConfigError("give exactly one of --id N or --url SUBSTRING")
    async with _hook_admin(repo):
        hooks = await host.list_hooks(repo)
    if hook_id is not None:
        chosen = [h for h in hooks if h.id == hook_id]
    else:
        chosen = [h for h in hooks if url_part is not None and url_part in h.url]
    if not chosen:
        what = f"id {hook_id}" if hook_id is not None else f"a URL containing {url_part!r}"
        raise HostNotFound(
            f"{repo} has no webhook with {what}; see `auto-review webhook list {repo}`",
            status=404,
        )
    async with _hook_admin(repo):
        for hook in chosen:
            await host.delete_hook(repo, hook.id)
    return chosen

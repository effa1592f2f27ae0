"""``auto-review webhook register|list|unregister|test``: the forge's hook to the gateway.

``register``, ``list`` and ``unregister`` use the bot's token (AR_FORGEJO_TOKEN; managing hooks
needs admin rights on the repository). ``test`` talks only to the gateway: it signs with
WEBHOOK_SECRET exactly as the forge does and exits 1 unless both deliveries were accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from auto_review.cli._common import (
    JSON_OPTION,
    err_console,
    load,
    out_console,
    parse_repo,
    print_json,
)
from auto_review.hosts import ForgejoHost, WebhookInfo, forgejo_host
from auto_review.ops import (
    list_webhooks,
    probe_webhook,
    register_webhook,
    unregister_webhooks,
)
from auto_review.settings import FORGE_REQUIRED, Settings

__all__ = ["app"]

app = typer.Typer(
    help="Register, list, remove and test the gateway's webhook.", no_args_is_help=True
)

_REPO = typer.Argument(..., help="OWNER/REPO")
_GATEWAY_URL = typer.Option(..., "--gateway-url", help="URL the forge reaches the gateway at.")
_FORGE_URL = typer.Option(None, "--forge-url", help="Forge base URL (default: FORGEJO_BASE_URL).")
_T = TypeVar("_T")


def _with_host(settings: Settings, call: Callable[[ForgejoHost], Awaitable[_T]]) -> _T:
    async def run() -> _T:
        async with forgejo_host(settings.forge()) as host:
            return await call(host)

    return asyncio.run(run())


def _hook_view(hook: WebhookInfo) -> dict[str, object]:
    return asdict(hook) | {"events": list(hook.events)}


@app.command("register")
def register(
    repo: str = _REPO, gateway_url: str = _GATEWAY_URL, forge_url: str | None = _FORGE_URL,
    as_json: bool = JSON_OPTION,
) -> None:  # fmt: skip
    """Add the gateway's hook (events: pull_request, issue_comment, review comments) once."""
    ref = parse_repo(repo)
    settings = load(require=FORGE_REQUIRED, overrides={"FORGEJO_BASE_URL": forge_url})
    done = _with_host(
        settings,
        lambda host: register_webhook(
            host, ref, gateway_url=gateway_url, secret=settings.webhook_secret
        ),
    )
    if as_json:
        print_json({"created": done.created, "hook": _hook_view(done.hook)})
        return
    if done.created:
        out_console.print(f"[green]✓[/] registered webhook {done.hook.id} on {ref} → "
                          f"{escape(done.hook.url)}")  # fmt: skip
    else:
        state = "" if done.hook.active else " [yellow](inactive: enable it in the forge)[/]"
        out_console.print(
            f"webhook {done.hook.id} on {ref} already points at {escape(done.hook.url)}; "
            f"nothing changed{state}"
        )


@app.command("list")
def list_command(
    repo: str = _REPO, forge_url: str | None = _FORGE_URL, as_json: bool = JSON_OPTION
) -> None:
    """The repository's webhooks (id, active, type, events, URL)."""
    ref = parse_repo(repo)
    settings = load(require=FORGE_REQUIRED, overrides={"FORGEJO_BASE_URL": forge_url})
    hooks = _with_host(settings, lambda host: list_webhooks(host, ref))
    if as_json:
        print_json([_hook_view(h) for h in hooks])
        return
    if not hooks:
        err_console.print(f"{ref} has no webhooks; add one with `auto-review webhook register`")
        return
    table = Table("id", "active", "type", "events", "url", title=f"webhooks of {ref}")
    for h in hooks:
        active = "[green]yes[/]" if h.active else "[yellow]no[/]"
        table.add_row(str(h.id), active, Text(h.type), Text(", ".join(h.events)), Text(h.url))
    out_console.print(table)


@app.command("unregister")
def unregister(
    repo: str = _REPO,
    hook_id: int | None = typer.Option(None, "--id", min=1, help="Remove the hook with this id."),
    url: str | None = typer.Option(None, "--url", help="Remove every hook whose URL contains it."),
    forge_url: str | None = _FORGE_URL,
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove one hook by id, or every hook whose URL contains a substring."""
    if (hook_id is None) == (url is None) or url == "":
        raise typer.BadParameter("give exactly one of --id N or --url SUBSTRING")
    ref = parse_repo(repo)
    settings = load(require=FORGE_REQUIRED, overrides={"FORGEJO_BASE_URL": forge_url})
    removed = _with_host(
        settings, lambda host: unregister_webhooks(host, ref, hook_id=hook_id, url_part=url)
    )
    if as_json:
        print_json([_hook_view(h) for h in removed])
        return
    for h in removed:
        out_console.print(f"removed webhook {h.id} ({h.url}) from {ref}", markup=False)


@app.command("test")
def probe(
    repo: str | None = typer.Argument(None, help="OWNER/REPO named in the sample event."),
    gateway_url: str = _GATEWAY_URL,
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds per request."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a signed ping and a signed sample pull_request event; exit 1 unless both pass."""
    ref = parse_repo(repo) if repo else None
    settings = load(require=frozenset({"WEBHOOK_SECRET"}))
    report = asyncio.run(
        probe_webhook(gateway_url, settings.webhook_secret, repo=ref, timeout_secs=timeout)
    )
    if as_json:
        print_json(report.to_dict())
    else:
        out_console.print(f"gateway webhook URL: {report.url}", markup=False)
        for d in report.deliveries:
            mark = "[green]✓[/]" if d.accepted else "[red]✗[/]"
            out_console.print(f"{mark} {d.event}: HTTP {d.status} (expected "
                              f"{d.expected_status}) {escape(repr(d.answer))}")  # fmt: skip
        if not report.ok:
            err_console.print(
                "[red]the gateway did not accept both deliveries.[/] 401: WEBHOOK_SECRET here "
                "differs from the gateway's; 404: wrong --gateway-url; 429: retry later."
            )
    if not report.ok:
        raise typer.Exit(1)

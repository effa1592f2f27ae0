"""``auto-review auth init``: mint the bot's API token with the minimal scopes.

The account password is read from a hidden prompt, or from standard input with
``--password-stdin`` (for scripts); never from argv, where ``ps`` would show it. The new token is
the only thing written to standard output, so it can be piped into a secret store; everything
else goes to standard error.
"""

from __future__ import annotations

import asyncio
import sys

import typer
from pydantic import SecretStr

from auto_review.cli._common import err_console, load
from auto_review.errors import ConfigError
from auto_review.hosts import BOT_TOKEN_SCOPES
from auto_review.ops import mint_bot_token

__all__ = ["app"]

app = typer.Typer(help="Set up the bot account's access to the forge.", no_args_is_help=True)

_FORGE_URL = typer.Option(None, "--forge-url", help="Forge base URL (default: FORGEJO_BASE_URL).")
_USERNAME = typer.Option(None, "--username", help="The bot's login (default: AR_BOT_LOGIN).")
_TOKEN_NAME = typer.Option("auto-review", "--token-name", help="Name of the new token.")
_PASSWORD_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from standard input (one line)."
)


def _password(from_stdin: bool) -> SecretStr:
    if from_stdin:
        line = sys.stdin.readline()
        value = line.rstrip("\r\n")
    else:
        value = typer.prompt("Password of the bot account", hide_input=True, err=True)
    if not value:
        raise ConfigError("no password given", ("type the bot account's password, or pipe it "
                                                "into --password-stdin",))  # fmt: skip
    return SecretStr(value)


@app.command("init")
def init(
    forge_url: str | None = _FORGE_URL,
    username: str | None = _USERNAME,
    token_name: str = _TOKEN_NAME,
    password_stdin: bool = _PASSWORD_STDIN,
) -> None:
    """Mint the bot's token (scopes: write:repository, write:issue, read:user); print it once."""
    settings = load(
        require=frozenset({"FORGEJO_BASE_URL"}),
        overrides={"FORGEJO_BASE_URL": forge_url, "AR_BOT_LOGIN": username},
    )
    password = _password(password_stdin)
    token = asyncio.run(
        mint_bot_token(str(settings.forgejo_base_url), settings.bot_login, password, token_name)
    )
    sys.stdout.write(token.token.get_secret_value() + "\n")
    sys.stdout.flush()
    err_console.print(
        f"[green]✓[/] token {token.name!r} (id {token.id}) for @{settings.bot_login}, scopes "
        f"{', '.join(token.scopes) or ', '.join(BOT_TOKEN_SCOPES)}. The forge shows it only "
        "this once: store it as AR_FORGEJO_TOKEN in the gateway's environment."
    )

"""What every command shares: loading settings once, rendering errors, the JSON switch."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from auto_review.logs import configure_logging
from auto_review.settings import Settings, load_settings

if TYPE_CHECKING:
    from auto_review.hosts import RepoRef

__all__ = ["JSON_OPTION", "err_console", "load", "out_console", "parse_repo", "print_json"]

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def load(
    require: frozenset[str] = frozenset(), overrides: Mapping[str, str | None] | None = None
) -> Settings:
    """Validate the environment (flags in ``overrides`` win), print warnings, set up logs."""
    given = {name: value for name, value in (overrides or {}).items() if value is not None}
    loaded = load_settings(require=require, overrides=given)
    for warning in loaded.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    settings = loaded.settings
    configure_logging(
        secrets=settings.secret_values(), level=settings.log_level, fmt=settings.log_format
    )
    return settings


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def parse_repo(text: str) -> RepoRef:
    """``OWNER/REPO``, or a usage error (exit 2) naming the expected form."""
    # Imported here: hosts brings httpx, which commands that take no repo (sandbox) need not.
    from auto_review.hosts import RepoRef  # noqa: PLC0415

    try:
        return RepoRef.parse(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not OWNER/REPO, e.g. alice/shop") from None

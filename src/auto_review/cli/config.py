"""``auto-review config``: show and check the service configuration."""

from __future__ import annotations

import typer
from rich.table import Table

from auto_review.cli._common import JSON_OPTION, err_console, load, out_console, print_json
from auto_review.errors import ConfigError
from auto_review.settings import (
    GATEWAY_REQUIRED,
    Settings,
    load_settings,
    unknown_variable_warnings,
)

app = typer.Typer(help="Show, check and validate configuration.", no_args_is_help=True)


@app.command("show")
def show(as_json: bool = JSON_OPTION) -> None:
    """Print the effective service configuration, every secret masked."""
    settings = load()
    view = settings.public_view()
    if as_json:
        print_json(view)
        return
    table = Table("variable", "value", "meaning", title="auto-review configuration")
    for name, field in Settings.model_fields.items():
        env = field.alias or name
        value = view[env]
        table.add_row(
            env, "[dim]unset[/]" if value is None else str(value), field.description or ""
        )
    out_console.print(table)


@app.command("check")
def check(as_json: bool = JSON_OPTION) -> None:
    """Validate the environment for the gateway; list every problem; exit 1 if any."""
    warnings = unknown_variable_warnings()
    problems: tuple[str, ...] = ()
    try:
        load_settings(require=GATEWAY_REQUIRED)
    except ConfigError as exc:
        problems = exc.problems
    if as_json:
        print_json({"ok": not problems, "problems": list(problems), "warnings": list(warnings)})
    else:
        for warning in warnings:
            err_console.print(f"  [yellow]![/] {warning}")
        for problem in problems:
            err_console.print(f"  [red]✗[/] {problem}")
        if problems:
            err_console.print(f"[red]configuration has {len(problems)} problem(s)[/]")
        else:
            out_console.print("[green]✓[/] configuration is valid")
    if problems:
        raise typer.Exit(1)

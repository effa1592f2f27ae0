"""``auto-review config``: show and check the service configuration."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from auto_review.cli._common import JSON_OPTION, err_console, load, out_console, print_json
from auto_review.errors import ConfigError
from auto_review.review.config import MAX_CONFIG_BYTES, parse_repo_config
from auto_review.review.output import printable
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


_CONFIG_FILE = typer.Argument(..., help="A .auto_review.yaml file.")
_STRICT = typer.Option(False, "--strict", help="Treat unknown keys as errors.")


@app.command("validate")
def validate(
    path: Path = _CONFIG_FILE, strict: bool = _STRICT, as_json: bool = JSON_OPTION
) -> None:
    """Validate a repository's .auto_review.yaml; exit 1 on any problem."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    loaded = parse_repo_config(data, strict=strict)
    if as_json:
        print_json(
            {
                "ok": not loaded.problems,
                "problems": list(loaded.problems),
                "warnings": list(loaded.warnings),
            }
        )
    else:
        # The file is a repository's, written by whoever can push there: its keys and values
        # are quoted with control characters escaped, never read as markup.
        for warning in loaded.warnings:
            err_console.print(f"  [yellow]![/] {escape(printable(warning))}")
        for problem in loaded.problems:
            err_console.print(f"  [red]✗[/] {escape(printable(problem))}")
        if not loaded.problems:
            out_console.print(f"[green]✓[/] {escape(printable(str(path)))} is valid")
    if loaded.problems:
        raise typer.Exit(1)

"""The ``auto-review`` entry point: the command groups and the one place errors become exit codes.

Exit codes: 0 success, 1 failure, 2 usage error (from click), and the sandbox's own codes for
``sandbox run`` (see docs/CLI.md).
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from auto_review import __version__
from auto_review.cli import (
    auth,
    bench,
    config,
    gateway,
    history,
    jobs,
    learnings,
    ops,
    review,
    sandbox,
    webhook,
)
from auto_review.cli._common import err_console
from auto_review.errors import AutoReviewError, ConfigError
from auto_review.sandbox import SandboxError

app = typer.Typer(
    name="auto-review",
    help="Self-hosted AI pull-request reviewer for Forgejo and Gitea.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config.app, name="config")
app.command("gateway")(gateway.gateway)
app.add_typer(jobs.app, name="jobs")
app.add_typer(history.app, name="history")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(review.app, name="review")
app.add_typer(auth.app, name="auth")
app.add_typer(webhook.app, name="webhook")
app.add_typer(ops.app, name="ops")
app.add_typer(learnings.app, name="learnings")
app.add_typer(bench.app, name="bench")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"auto-review {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Self-hosted AI pull-request reviewer for Forgejo and Gitea."""


def main() -> None:
    """Run the CLI; turn every ``AutoReviewError`` into a message and its exit code."""
    try:
        app()
    except ConfigError as exc:
        err_console.print(f"[red]error:[/] {escape(exc.message)}")
        for problem in exc.problems:
            err_console.print(f"  [red]✗[/] {escape(problem)}")
        sys.exit(exc.exit_code)
    except AutoReviewError as exc:
        err_console.print(f"[red]error:[/] {escape(exc.message)}")
        sys.exit(exc.exit_code)
    except SandboxError as exc:
        err_console.print(f"[red]sandbox error:[/] {escape(exc.message)}")
        sys.exit(exc.exit_code)

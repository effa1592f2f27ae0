"""The ``auto-review`` entry point: the command groups and the one place errors become exit codes.

A group's module is imported only when that group runs (``_LazyGroup``), so ``--version``,
``sandbox run`` and the sandbox's inner ``gateway`` do not pay for every other group's imports;
the root's ``--help`` lists the groups from ``COMMANDS`` without importing any of them.

Exit codes: 0 success, 1 failure, 2 usage error (from click), and the sandbox's own codes for
``sandbox run`` (see docs/CLI.md).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import TYPE_CHECKING, NamedTuple

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from auto_review import __version__
from auto_review.errors import AutoReviewError, ConfigError
from auto_review.sandbox import SandboxError

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter

__all__ = ["COMMANDS", "app", "main"]


class Entry(NamedTuple):
    """Where a command lives and the short help the root's ``--help`` shows for it."""

    module: str  # its ``app`` is the Typer of the group
    help: str
    group: bool = True  # False: the module's ``app`` holds one command, run as this name


COMMANDS: dict[str, Entry] = {
    "gateway": Entry(
        "auto_review.cli.gateway",
        "Receive webhooks and CI triggers, review pull requests, answer chat mentions.",
        group=False,
    ),
    "config": Entry("auto_review.cli.config", "Show, check and validate configuration."),
    "jobs": Entry("auto_review.cli.jobs", "List, retry and cancel queued review and chat jobs."),
    "history": Entry("auto_review.cli.history", "List, reset and purge review outcomes."),
    "sandbox": Entry(
        "auto_review.cli.sandbox", "Inspect the built-in sandbox and run commands in it."
    ),
    "review": Entry("auto_review.cli.review", "Review a pull request, or your local branch."),
    "auth": Entry("auto_review.cli.auth", "Set up the bot account's access to the forge."),
    "webhook": Entry(
        "auto_review.cli.webhook", "Register, list, remove and test the gateway's webhook."
    ),
    "ops": Entry("auto_review.cli.ops", "Diagnose this host and look at a running gateway."),
    "learnings": Entry("auto_review.cli.learnings", "List and forget repository learnings."),
    "bench": Entry("auto_review.cli.bench", "Measure review quality on labelled PR fixtures."),
}


def load_command(name: str) -> Command:
    """Import the module of ``COMMANDS[name]`` and build its click command."""
    entry = COMMANDS[name]
    app: typer.Typer = importlib.import_module(entry.module).app
    # get_group, as add_typer does: a group even with one command (``auth init``), and without
    # the --install-completion options get_command gives a Typer that has them.
    command = typer.main.get_group(app) if entry.group else typer.main.get_command(app)
    command.name = name
    return command


class _LazyGroup(TyperGroup):
    """The root: knows every command by its ``COMMANDS`` entry, imports one when it is used."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        # Typer suggests from the commands loaded so far (none yet): suggest from the table.
        typo = args[0] if args else ""
        close = difflib.get_close_matches(typo, COMMANDS) if typo not in COMMANDS else []
        if close and not ctx.resilient_parsing:
            ctx.fail(f"No such command {typo!r}. Did you mean {', '.join(map(repr, close))}?")
        return super().resolve_command(ctx, args)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        # The same help, drawn from a group whose commands are the table's short helps.
        listing = TyperGroup(
            name=self.name,
            params=self.params,
            help=self.help,
            rich_markup_mode=self.rich_markup_mode,
            commands=[TyperCommand(name=n, help=e.help) for n, e in COMMANDS.items()],
        )
        listing.format_help(ctx, formatter)


app = typer.Typer(
    name="auto-review",
    cls=_LazyGroup,
    help="Self-hosted AI pull-request reviewer for Forgejo and Gitea.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    except (AutoReviewError, SandboxError) as exc:
        _report(exc)
        sys.exit(exc.exit_code)


def _report(exc: AutoReviewError | SandboxError) -> None:
    # Imported on the error path only: _common loads the settings machinery, which --version
    # and --help do not need (every command that can fail has loaded it already).
    from rich.markup import escape  # noqa: PLC0415

    from auto_review.cli._common import err_console  # noqa: PLC0415
    from auto_review.review.output import printable  # noqa: PLC0415

    # Messages may quote what the gateway wrote in the state database (a refused schema's
    # object names) or a forge's answer: control characters escaped, never read as markup.
    if isinstance(exc, SandboxError):
        err_console.print(f"[red]sandbox error:[/] {escape(printable(exc.message))}")
        return
    err_console.print(f"[red]error:[/] {escape(printable(exc.message))}")
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            err_console.print(f"  [red]✗[/] {escape(printable(problem))}")

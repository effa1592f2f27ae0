"""``auto-review history list|reset-pr|purge``: the record of review outcomes."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import typer
from rich.table import Table
from rich.text import Text

from auto_review.cli._common import JSON_OPTION, load, out_console, print_json
from auto_review.cli._state import open_state_store
from auto_review.errors import ConfigError
from auto_review.hosts import RepoRef
from auto_review.jobs import list_history, purge_history, reset_pr_history
from auto_review.review.output import printable
from auto_review.store import Store

__all__ = ["app"]

app = typer.Typer(help="List, reset and purge review outcomes.", no_args_is_help=True)


def _store() -> Store:
    return open_state_store(load())


def _repo(text: str) -> RepoRef:
    try:
        return RepoRef.parse(text)
    except ValueError as exc:
        raise ConfigError(f"invalid repository {text!r}: {exc}") from exc


@app.command("list")
def list_command(
    repo: str | None = typer.Option(None, "--repo", help="Only OWNER/REPO."),
    pr: int | None = typer.Option(None, "--pr", min=1, help="Only this PR number."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    as_json: bool = JSON_OPTION,
) -> None:
    """Review outcomes, newest first."""
    store = _store()
    try:
        entries = list_history(store, repo=_repo(repo) if repo else None, number=pr, limit=limit)
    finally:
        store.close()
    if as_json:
        print_json([asdict(e) | {"repo": str(e.repo)} for e in entries])
        return
    table = Table("when", "PR", "head", "outcome", "findings", "tokens", "cost", "reason")
    for e in entries:
        # Every cell is read back from a file the gateway writes: escaped, and not markup.
        table.add_row(*(Text(printable(c)) for c in (
            datetime.fromtimestamp(e.finished_at, UTC).strftime("%Y-%m-%d %H:%M"),
            f"{e.repo}#{e.number}",
            e.head_sha[:10],
            e.outcome,
            f"{e.errors}/{e.warnings}/{e.notes}",
            str(e.prompt_tokens + e.completion_tokens),
            f"${e.cost_usd:.4f}",
            e.reason,
        )))  # fmt: skip
    out_console.print(table)


def _target(target: str, number: int | None) -> tuple[RepoRef, int]:
    name, sep, tail = target.partition("#")
    if sep and number is None and tail.isdigit() and int(tail) > 0:
        return _repo(name), int(tail)
    if not sep and number is not None:
        return _repo(name), number
    raise typer.BadParameter("give OWNER/REPO#N (or OWNER/REPO N), e.g. alice/shop#12")


@app.command("reset-pr")
def reset_pr_command(
    target: str = typer.Argument(..., help="OWNER/REPO#N"),
    pr: int | None = typer.Argument(None, min=1, help="The PR number, if not given after #."),
) -> None:
    """Forget one PR's review outcomes (its next automatic review starts from scratch)."""
    repo, number = _target(target, pr)
    store = _store()
    try:
        removed = reset_pr_history(store, repo, number)
    finally:
        store.close()
    out_console.print(f"removed {removed} outcome(s) of {repo}#{number}")


@app.command("purge")
def purge_command(
    older_than_days: float = typer.Option(
        ..., "--older-than", "--older-than-days", min=0, help="Age in days."
    ),
) -> None:
    """Delete outcomes older than the given number of days."""
    store = _store()
    try:
        removed = purge_history(store, older_than_days=older_than_days)
    finally:
        store.close()
    out_console.print(f"removed {removed} outcome(s)")

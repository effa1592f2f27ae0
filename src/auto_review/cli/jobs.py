"""``auto-review jobs list|retry|cancel``: look at and steer the durable job queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from auto_review.cli._common import JSON_OPTION, load, out_console, print_json
from auto_review.cli._state import open_state_store
from auto_review.errors import ConfigError
from auto_review.hosts import RepoRef
from auto_review.jobs import Job, JobState, cancel_job, list_jobs, retry_job
from auto_review.review.output import printable
from auto_review.store import Store

__all__ = ["app", "job_view"]

_STATE_OPTION = typer.Option([], "--state", help="Only jobs in this state (repeatable).")
app = typer.Typer(help="List, retry and cancel queued review and chat jobs.", no_args_is_help=True)


def _store() -> Store:
    return open_state_store(load())


def _when(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def job_view(job: Job) -> dict[str, Any]:
    """The JSON shape of a job (no comment bodies: they are untrusted and may be long)."""
    return {
        "id": job.id,
        "kind": job.kind.value,
        "state": job.state.value,
        "repo": str(job.repo),
        "number": job.number,
        "head_sha": job.head_sha,
        "trigger": job.trigger.value,
        "force": job.force,
        "comment_id": job.comment_id,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": _when(job.created_at),
        "finished_at": _when(job.finished_at),
        "result": job.result,
        "reason": job.reason,
    }


def _render(jobs: list[Job], as_json: bool) -> None:
    if as_json:
        print_json([job_view(j) for j in jobs])
        return
    table = Table("id", "kind", "state", "PR", "head", "attempts", "result", "reason")
    for j in jobs:
        # Every cell is read back from a file the gateway writes: escaped, and not markup.
        cells = (f"{j.repo}#{j.number}", (j.head_sha or "")[:10], f"{j.attempts}/{j.max_attempts}",
                 j.result or "", j.reason or "")  # fmt: skip
        table.add_row(str(j.id), j.kind.value, j.state.value, *(Text(printable(c)) for c in cells))
    out_console.print(table)


@app.command("list")
def list_command(
    state: list[str] = _STATE_OPTION,
    repo: str | None = typer.Option(None, "--repo", help="Only jobs of OWNER/REPO."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="How many, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The newest jobs, newest first."""
    try:
        states = [JobState(s) for s in state]
        ref = RepoRef.parse(repo) if repo else None
    except ValueError as exc:
        raise ConfigError(f"invalid filter: {exc}") from exc
    store = _store()
    try:
        _render(list_jobs(store, states=states, repo=ref, limit=limit), as_json)
    finally:
        store.close()


@app.command("retry")
def retry_command(job_id: int = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Queue a failed or cancelled job again, with fresh attempts."""
    store = _store()
    try:
        _render([retry_job(store, job_id)], as_json)
    finally:
        store.close()


@app.command("cancel")
def cancel_command(job_id: int = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Cancel a queued or running job (a running gateway stops it within a second)."""
    store = _store()
    try:
        _render([cancel_job(store, job_id)], as_json)
    finally:
        store.close()

"""``auto-review review``: review one PR on the forge, or the local branch before pushing.

- ``review once OWNER/REPO#N [--dry-run]``: the gateway's pipeline for one PR, run here;
  ``--dry-run`` prints the review and status that would be posted and posts nothing.
- ``review local [--base REF] [--format text|json|sarif]``: the same pipeline and sandbox on
  the current checkout against its merge base; exit 1 while error-level findings remain, so
  it works as a pre-push hook.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from enum import StrEnum
from pathlib import Path

import httpx
import typer

from auto_review.cli._common import JSON_OPTION, err_console, load, out_console, print_json
from auto_review.cli._state import open_state_store
from auto_review.errors import ConfigError
from auto_review.hosts import HeadSha, PullRequest, RepoRef
from auto_review.hosts.forgejo import forgejo_host
from auto_review.llm import LLMClient, load_price_table
from auto_review.review import (
    LocalHost,
    Outcome,
    PipelineOptions,
    PreparedReview,
    ReviewOutcome,
    ReviewPipeline,
    ReviewRequest,
    Trigger,
    to_json,
    to_sarif,
    to_text,
)
from auto_review.review.output import printable
from auto_review.review.workspace import Workspace
from auto_review.settings import FORGE_REQUIRED, LLM_REQUIRED, Settings

app = typer.Typer(help="Review a pull request, or your local branch.", no_args_is_help=True)


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"


_TARGET = typer.Argument(..., help="OWNER/REPO#NUMBER")
_DRY_RUN = typer.Option(False, "--dry-run", help="Print what would be posted; post nothing.")
_BASE = typer.Option(None, "--base", help="Base ref (default: origin/HEAD, main or master).")
_FORMAT = typer.Option(Format.TEXT, "--format", help="Output format.")
_REPO_DIR = typer.Option(Path("."), "--repo", help="The checkout to review.")


def _parse_target(target: str) -> tuple[RepoRef, int]:
    name, sep, number = target.partition("#")
    if not sep or not number.isdigit():
        raise ConfigError("expected OWNER/REPO#NUMBER, e.g. alice/shop#12")
    try:
        return RepoRef.parse(name), int(number)
    except ValueError as exc:
        raise ConfigError(f"not a repository name: {name}") from exc


def _http(settings: Settings) -> httpx.AsyncClient:
    timeout = httpx.Timeout(settings.llm_timeout_secs, connect=10.0)
    return httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False)


async def _once(settings: Settings, repo: RepoRef, number: int, dry_run: bool) -> object:
    # For the rest of the process: the sandboxed steps below then run as the gateway would.
    store = open_state_store(settings)
    try:
        async with forgejo_host(settings.forge()) as host, _http(settings) as http:
            options = PipelineOptions.from_settings(settings, report_errors=True)
            pipeline = ReviewPipeline(
                options,
                host,
                LLMClient(settings.llm(), http),
                store,
                prices=load_price_table(settings.price_table_path),
            )
            pr = await host.get_pull_request(repo, number)
            request = ReviewRequest(
                repo, number, HeadSha(pr.head_sha), Trigger.CLI, force=True, dry_run=dry_run
            )
            if dry_run:
                return await pipeline.prepare(request)
            return await pipeline.run(request)
    finally:
        store.close()


@app.command("once")
def once(target: str = _TARGET, dry_run: bool = _DRY_RUN, as_json: bool = JSON_OPTION) -> None:
    """Review one pull request now (posts a review and a status unless --dry-run)."""
    settings = load(require=FORGE_REQUIRED | LLM_REQUIRED)
    repo, number = _parse_target(target)
    result = asyncio.run(_once(settings, repo, number, dry_run))
    if isinstance(result, PreparedReview):
        if as_json:
            print_json(
                {
                    **to_json(result),
                    "body": result.body(),
                    "comments": [
                        {"path": p, "line": n, "body": b} for p, n, b in result.comments()
                    ],
                }
            )
            return
        out_console.print(f"[bold]event:[/] {result.event.value}")
        out_console.print(
            f"[bold]status:[/] {result.status.state.value}: {result.status.description}"
        )
        # Model text and file names: shown, never interpreted by the terminal.
        out_console.print(printable(result.body()), markup=False)
        for path, line, body in result.comments():
            out_console.print(printable(f"\n--- {path}:{line}"), markup=False)
            out_console.print(printable(body), markup=False)
        return
    if isinstance(result, ReviewOutcome):
        if as_json:
            print_json(result.__dict__)
            return
        out_console.print(f"{result.outcome.value}: {result.reason}", markup=False)
        if result.outcome is Outcome.POSTED:
            out_console.print(
                f"errors={result.errors} warnings={result.warnings} notes={result.notes} "
                f"tokens={result.prompt_tokens}+{result.completion_tokens} "
                f"cost=${result.cost_usd:.4f}"
            )


async def _local(
    settings: Settings, root: Path, base: str | None
) -> PreparedReview | ReviewOutcome:
    with tempfile.TemporaryDirectory(prefix="ar-home-") as home:
        host = LocalHost(root, base=base, isolation=settings.isolation, home=Path(home))
        async with _http(settings) as http:
            options = PipelineOptions.from_settings(settings)

            async def workspace(_pr: PullRequest, _since: str | None) -> Workspace:
                return host.workspace()  # no history here: never asked for an incremental diff

            pipeline = ReviewPipeline(
                options,
                host,
                LLMClient(settings.llm(), http),
                None,
                prices=load_price_table(settings.price_table_path),
                workspace_factory=workspace,
            )
            request = ReviewRequest(
                host.repo, 0, HeadSha(host.head), Trigger.CLI, force=True, dry_run=True
            )
            return await pipeline.prepare(request)


@app.command("local")
def local(base: str | None = _BASE, fmt: Format = _FORMAT, repo_dir: Path = _REPO_DIR) -> None:
    """Review this checkout against its base; exit 1 while error-level findings remain."""
    settings = load(require=LLM_REQUIRED)
    result = asyncio.run(_local(settings, repo_dir, base))
    if isinstance(result, ReviewOutcome):
        err_console.print(f"{result.outcome.value}: {result.reason}", markup=False)
        return
    if fmt is Format.JSON:
        print_json(to_json(result))
    elif fmt is Format.SARIF:
        sys.stdout.write(json.dumps(to_sarif(result), indent=2) + "\n")
    else:
        sys.stdout.write(to_text(result))
    if any(f.severity.value == "error" for f in result.findings):
        raise typer.Exit(1)

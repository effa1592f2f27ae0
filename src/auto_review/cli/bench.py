"""``auto-review bench run FIXTURES...``: review quality of the configured model, measured.

Each labelled fixture goes through the real review stages against the configured model
(LLM_* settings); the report gives precision, recall (a finding within 2 lines of a label
counts), false positives on clean PRs, latency and tokens. With ``--baseline`` (the ``--json``
output of an earlier run) regressions are listed; ``--fail-on-regression`` makes them exit 1.
A fixture that fails to run also exits 1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from auto_review.bench import BenchReport, load_baseline, load_fixtures, run_bench
from auto_review.cli._common import JSON_OPTION, err_console, load, out_console, print_json
from auto_review.llm import LLMClient, load_price_table
from auto_review.review import PipelineOptions
from auto_review.settings import LLM_REQUIRED, Settings

__all__ = ["app"]

app = typer.Typer(help="Measure review quality on labelled PR fixtures.", no_args_is_help=True)

_FIXTURES = typer.Argument(..., help="Fixture files, or directories of *.json fixtures.")
_BASELINE = typer.Option(None, "--baseline", help="JSON of an earlier run to compare with.")
_FAIL = typer.Option(False, "--fail-on-regression", help="Exit 1 when worse than --baseline.")


async def _run(
    settings: Settings, fixtures: list[Path], baseline: Path | None, *, show_progress: bool
) -> BenchReport:
    loaded = load_fixtures(fixtures)
    reference = load_baseline(baseline) if baseline else None
    timeout = httpx.Timeout(settings.llm_timeout_secs, connect=10.0)
    with Progress(console=err_console, transient=True, disable=not show_progress) as progress:
        task = progress.add_task("reviewing fixtures", total=len(loaded))
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            return await run_bench(
                loaded, llm=LLMClient(settings.llm(), http),
                options=PipelineOptions.from_settings(settings),
                model=settings.llm_reasoning_model,
                prices=load_price_table(settings.price_table_path), baseline=reference,
                baseline_name=str(baseline) if baseline else None,
                on_result=lambda _result: progress.advance(task),
            )  # fmt: skip


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _render(report: BenchReport) -> None:
    table = Table("fixture", "expected", "found", "TP", "FP", "FN", "latency", "tokens", "note")
    for r in report.results:
        note = r.error or ("clean PR" if r.must_be_silent else "")
        if r.missed:
            note = (note + " missed " + ", ".join(r.missed)).strip()
        table.add_row(
            Text(r.name), str(r.expected), str(r.findings), str(r.true_positives),
            str(r.false_positives), str(r.false_negatives), f"{r.latency_secs:.2f}s",
            str(r.prompt_tokens + r.completion_tokens), Text(note),
        )  # fmt: skip
    out_console.print(table)
    s = report.summary
    out_console.print(
        f"model {report.model}: precision {_pct(s.precision)}, recall {_pct(s.recall)} "
        f"(±{s.line_tolerance} lines); clean PRs with findings {s.noisy_clean_fixtures}/"
        f"{s.clean_fixtures} ({s.clean_false_positives} false positives); latency p50 "
        f"{s.latency_p50_secs:.2f}s p95 {s.latency_p95_secs:.2f}s; tokens "
        f"{s.prompt_tokens}+{s.completion_tokens}; failed fixtures {s.errors}",
        markup=False,
    )
    for line in report.regressions:
        err_console.print(f"[red]regression:[/] {escape(line)}")


@app.command("run")
def run(
    fixtures: list[Path] = _FIXTURES,
    baseline: Path | None = _BASELINE,
    fail_on_regression: bool = _FAIL,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay labelled PRs through the pipeline; report precision, recall, latency, tokens."""
    if fail_on_regression and baseline is None:
        raise typer.BadParameter("--fail-on-regression needs --baseline FILE")
    settings = load(require=LLM_REQUIRED)
    report = asyncio.run(_run(settings, fixtures, baseline, show_progress=not as_json))
    if as_json:
        print_json(report.to_dict())
    else:
        _render(report)
    if report.summary.errors or (fail_on_regression and report.regressions):
        raise typer.Exit(1)

"""Scoring a bench run: matching findings to labels, the summary, and the regression check.

A finding matches an expected problem when the path is the same and the expected line lies
within the finding's lines widened by ``LINE_TOLERANCE`` (2) on each side: models cite the
statement, its first line or the line above, and all of those point a reader at the problem.
Each expected problem is matched at most once; each finding counts once.

Regression (``compare``): precision or recall more than 5 points lower, more false positives on
clean PRs, more fixtures that failed to run, or p95 latency both 50% and 1 s above the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from auto_review.bench._fixture import Expected, Fixture
from auto_review.review.findings import Finding

__all__ = [
    "LINE_TOLERANCE",
    "BenchSummary",
    "FixtureResult",
    "compare",
    "score_fixture",
    "summarise",
]

LINE_TOLERANCE = 2
MAX_SCORE_DROP = 0.05
LATENCY_RATIO = 1.5
LATENCY_FLOOR_SECS = 1.0


@dataclass(frozen=True)
class FixtureResult:
    name: str
    must_be_silent: bool
    expected: int
    findings: int
    true_positives: int
    false_positives: int
    false_negatives: int
    latency_secs: float
    prompt_tokens: int
    completion_tokens: int
    severity_agreements: int = 0  # matched findings whose severity equals the label's
    unmatched: tuple[str, ...] = ()  # "path:line severity" of false positives
    missed: tuple[str, ...] = ()  # "path:line" of false negatives
    error: str | None = None


@dataclass(frozen=True)
class BenchSummary:
    fixtures: int
    errors: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float | None  # None: no findings at all
    recall: float | None  # None: nothing expected
    clean_fixtures: int
    noisy_clean_fixtures: int  # clean PRs with at least one finding
    clean_false_positives: int
    latency_p50_secs: float
    latency_p95_secs: float
    latency_max_secs: float
    prompt_tokens: int
    completion_tokens: int
    line_tolerance: int = LINE_TOLERANCE
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data


def _matches(finding: Finding, expected: Expected) -> bool:
    low = finding.line_start - LINE_TOLERANCE
    high = finding.line_end + LINE_TOLERANCE
    return finding.path == expected.path and low <= expected.line <= high


def score_fixture(
    fixture: Fixture,
    findings: Sequence[Finding],
    *,
    latency_secs: float,
    prompt_tokens: int,
    completion_tokens: int,
) -> FixtureResult:
    """One fixture's counts (greedy one-to-one matching in label order)."""
    left = list(findings)
    hits = agree = 0
    missed = []
    for exp in fixture.expected:
        found = next((f for f in left if _matches(f, exp)), None)
        if found is None:
            missed.append(f"{exp.path}:{exp.line}")
            continue
        left.remove(found)
        hits += 1
        agree += exp.severity is None or exp.severity == found.severity.value
    return FixtureResult(
        name=fixture.name, must_be_silent=fixture.must_be_silent,
        expected=len(fixture.expected), findings=len(findings), true_positives=hits,
        false_positives=len(left), false_negatives=len(missed), latency_secs=latency_secs,
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
        severity_agreements=agree,
        unmatched=tuple(f"{f.path}:{f.line_start} {f.severity.value}" for f in left),
        missed=tuple(missed),
    )  # fmt: skip


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summarise(results: Sequence[FixtureResult]) -> BenchSummary:
    """Totals over every fixture that ran (failed fixtures count only in ``errors``)."""
    ran = [r for r in results if r.error is None]
    tp = sum(r.true_positives for r in ran)
    fp = sum(r.false_positives for r in ran)
    fn = sum(r.false_negatives for r in ran)
    clean = [r for r in ran if r.must_be_silent]
    latencies = [r.latency_secs for r in ran]
    return BenchSummary(
        fixtures=len(results), errors=len(results) - len(ran), true_positives=tp,
        false_positives=fp, false_negatives=fn,
        precision=round(tp / (tp + fp), 4) if tp + fp else None,
        recall=round(tp / (tp + fn), 4) if tp + fn else None,
        clean_fixtures=len(clean), noisy_clean_fixtures=sum(r.findings > 0 for r in clean),
        clean_false_positives=sum(r.false_positives for r in clean),
        latency_p50_secs=round(_percentile(latencies, 0.5), 3),
        latency_p95_secs=round(_percentile(latencies, 0.95), 3),
        latency_max_secs=round(max(latencies, default=0.0), 3),
        prompt_tokens=sum(r.prompt_tokens for r in ran),
        completion_tokens=sum(r.completion_tokens for r in ran),
    )  # fmt: skip


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def compare(summary: BenchSummary, baseline: Mapping[str, Any]) -> list[str]:
    """Each way ``summary`` is worse than ``baseline`` (a summary dict), as a sentence."""
    found = []
    for key in ("precision", "recall"):
        now, then = getattr(summary, key), _number(baseline, key)
        if then is not None and (now if now is not None else 0.0) < then - MAX_SCORE_DROP:
            found.append(f"{key} fell from {then:.3f} to {now if now is not None else 0:.3f}")
    for key in ("clean_false_positives", "errors"):
        then = _number(baseline, key)
        if then is not None and getattr(summary, key) > then:
            found.append(f"{key} rose from {then:g} to {getattr(summary, key)}")
    then = _number(baseline, "latency_p95_secs")
    now = summary.latency_p95_secs
    if then is not None and now > then * LATENCY_RATIO and now > then + LATENCY_FLOOR_SECS:
        found.append(f"p95 latency rose from {then:.2f} s to {now:.2f} s")
    return found

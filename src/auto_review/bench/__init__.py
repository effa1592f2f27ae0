"""Review quality benchmark: labelled PR fixtures through the real pipeline stages.

    fixtures = load_fixtures([Path("bench/fixtures")])
    report = await run_bench(fixtures, llm=client, options=options, model=name)
    report.summary.precision, report.summary.recall, report.regressions

See ``_score`` for the matching rule (path equal, line within +-2) and the regression rule.
"""

from auto_review.bench._baseline import load_baseline
from auto_review.bench._fixture import Expected, Fixture, load_fixtures
from auto_review.bench._host import FixtureHost
from auto_review.bench._run import BenchReport, run_bench
from auto_review.bench._score import (
    LINE_TOLERANCE,
    BenchSummary,
    FixtureResult,
    compare,
    score_fixture,
    summarise,
)

__all__ = [
    "LINE_TOLERANCE",
    "BenchReport",
    "BenchSummary",
    "Expected",
    "Fixture",
    "FixtureHost",
    "FixtureResult",
    "compare",
    "load_baseline",
    "load_fixtures",
    "run_bench",
    "score_fixture",
    "summarise",
]

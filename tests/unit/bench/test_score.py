"""Matching findings to labels, the summary and the regression rule of ``bench``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auto_review.bench import (
    LINE_TOLERANCE,
    Expected,
    Fixture,
    FixtureResult,
    compare,
    load_fixtures,
    score_fixture,
    summarise,
)
from auto_review.errors import ConfigError
from auto_review.review.findings import Finding, Severity

CORPUS = Path(__file__).resolve().parents[3] / "bench" / "fixtures"


def _finding(path: str, start: int, end: int | None = None, severity: str = "error") -> Finding:
    return Finding(path, start, end or start, Severity(severity), "bug", "m", "e")


def _fixture(*expected: Expected, silent: bool = False) -> Fixture:
    return Fixture("f", "t", "", "diff", tuple(expected), must_be_silent=silent)


def test_a_finding_within_the_line_tolerance_matches_and_one_beyond_does_not() -> None:
    fixture = _fixture(Expected("a.py", 10, "error"))
    near = score_fixture(fixture, [_finding("a.py", 10 + LINE_TOLERANCE)], latency_secs=0,
                         prompt_tokens=0, completion_tokens=0)  # fmt: skip
    far = score_fixture(fixture, [_finding("a.py", 11 + LINE_TOLERANCE)], latency_secs=0,
                        prompt_tokens=0, completion_tokens=0)  # fmt: skip
    assert (near.true_positives, near.false_positives, near.false_negatives) == (1, 0, 0)
    assert (far.true_positives, far.false_positives, far.false_negatives) == (0, 1, 1)


def test_a_finding_spanning_the_labelled_line_matches_but_another_file_does_not() -> None:
    fixture = _fixture(Expected("a.py", 20))
    spanning = score_fixture(fixture, [_finding("a.py", 15, 25)], latency_secs=0,
                             prompt_tokens=0, completion_tokens=0)  # fmt: skip
    other = score_fixture(fixture, [_finding("b.py", 20)], latency_secs=0, prompt_tokens=0,
                          completion_tokens=0)  # fmt: skip
    assert spanning.true_positives == 1
    assert other.true_positives == 0


def test_each_label_is_matched_at_most_once_and_severity_agreement_is_counted() -> None:
    fixture = _fixture(Expected("a.py", 10, "error"), Expected("a.py", 11, "warning"))
    result = score_fixture(
        fixture, [_finding("a.py", 10), _finding("a.py", 10, severity="warning"),
                  _finding("a.py", 10)], latency_secs=0, prompt_tokens=0, completion_tokens=0,
    )  # fmt: skip
    assert (result.true_positives, result.false_positives, result.false_negatives) == (2, 1, 0)
    assert result.severity_agreements == 2  # error label: the error; warning label: the warning


def test_summary_counts_clean_pr_noise_and_leaves_failed_fixtures_out_of_scores() -> None:
    results = [
        FixtureResult("bug", False, 2, 1, 1, 0, 1, 1.0, 10, 5),
        FixtureResult("clean", True, 0, 2, 0, 2, 0, 3.0, 10, 5),
        FixtureResult("broken", False, 1, 0, 0, 0, 1, 0.5, 0, 0, error="model down"),
    ]
    s = summarise(results)
    assert (s.fixtures, s.errors, s.precision, s.recall) == (3, 1, round(1 / 3, 4), 0.5)
    assert (s.clean_fixtures, s.noisy_clean_fixtures, s.clean_false_positives) == (1, 1, 2)
    assert (s.latency_max_secs, s.prompt_tokens, s.completion_tokens) == (3.0, 20, 10)


def test_compare_flags_drops_beyond_five_points_and_ignores_small_noise() -> None:
    now = summarise([FixtureResult("x", False, 4, 4, 3, 1, 1, 2.0, 0, 0)])  # P 0.75, R 0.75
    assert compare(now, {"precision": 0.78, "recall": 0.79, "latency_p95_secs": 1.9}) == []
    worse = compare(now, {"precision": 0.9, "recall": 0.9, "clean_false_positives": 0,
                          "errors": 0, "latency_p95_secs": 0.5})  # fmt: skip
    assert [w.split()[0] for w in worse] == ["precision", "recall", "p95"]
    # Latency must rise by both half and a whole second: sub-second jitter is not a regression.
    assert compare(now, {"latency_p95_secs": 1.2}) == []


def test_the_shipped_corpus_loads_with_clean_prs_and_several_languages() -> None:
    fixtures = load_fixtures([CORPUS])
    assert 5 <= len(fixtures) <= 10
    assert sum(f.must_be_silent for f in fixtures) >= 2
    suffixes = {Path(e.path).suffix for f in fixtures for e in f.expected}
    assert len(suffixes) >= 5
    for f in fixtures:
        for e in f.expected:
            assert f.files[e.path].splitlines()[e.line - 1].strip(), (f.name, e)
            assert f"+{f.files[e.path].splitlines()[e.line - 1]}" in f.diff, (f.name, e)


def test_load_fixtures_refuses_unknown_keys_bad_labels_and_empty_input(tmp_path: Path) -> None:
    good = {"name": "a", "title": "t", "diff": "d", "expected": [{"path": "x", "line": 1}]}
    path = tmp_path / "a.json"
    path.write_text(json.dumps(good))
    assert load_fixtures([path])[0].expected == (Expected("x", 1),)
    for bad in ({**good, "expcted": []}, {**good, "expected": [{"path": "x", "line": 0}]},
                {**good, "must_be_silent": True}, {**good, "diff": ""}):  # fmt: skip
        path.write_text(json.dumps(bad))
        with pytest.raises(ConfigError):
            load_fixtures([path])
    with pytest.raises(ConfigError):
        load_fixtures([tmp_path / "empty-dir-does-not-exist"])

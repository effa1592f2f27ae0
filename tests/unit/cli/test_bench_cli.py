"""``auto-review bench run`` over the shipped corpus against the scripted model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._harness import finding, review_answer
from tests.fakes.llm import ScriptedModel, ScriptedModelServer, Step, reply, server_error
from tests.fakes.llm_script import SCRIPTED_API_KEY, RecordedRequest
from tests.unit.cli._cli import clean_env, run_cli

from auto_review.bench import load_fixtures

CORPUS = Path(__file__).resolve().parents[3] / "bench" / "fixtures"
FIXTURES = {f.name: f for f in load_fixtures([CORPUS])}


def _line(name: str, path: str, number: int) -> dict[str, Any]:
    text = FIXTURES[name].files[path].splitlines()[number - 1]
    return finding(path, number, text.strip(), severity="error")


def _answer(request: RecordedRequest) -> Step:
    """Finds the orders bugs and the Rust panic, cries wolf on the clean rename, misses the rest."""
    text = request.text()
    found: list[dict[str, Any]] = []
    if "shop/orders.py" in text:
        found = [_line("python-orders-filter", e.path, e.line)
                 for e in FIXTURES["python-orders-filter"].expected]  # fmt: skip
    elif "src/query.rs" in text:
        (e,) = FIXTURES["rust-query-page"].expected
        found = [_line("rust-query-page", e.path, e.line + 1)]  # one line off: within tolerance
    elif "shop/money.py" in text:
        found = [_line("python-clean-rename", "shop/money.py", 10)]
    return reply(json.dumps(review_answer(*found)))


@pytest.fixture
def model(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    scripted_model_server: ScriptedModelServer,
    scripted_model: ScriptedModel,
) -> ScriptedModel:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("LLM_BASE_URL", scripted_model_server.base_url)
    monkeypatch.setenv("LLM_API_KEY", SCRIPTED_API_KEY)
    monkeypatch.setenv("LLM_REASONING_MODEL", "scripted-reasoning")
    return scripted_model


def test_bench_scores_the_corpus_through_the_pipeline(model: ScriptedModel) -> None:
    model.respond_with(_answer)
    ran = run_cli("bench", "run", str(CORPUS), "--json")
    assert ran.code == 0, ran.output
    report = json.loads(ran.stdout)
    s = report["summary"]
    expected = sum(len(f.expected) for f in FIXTURES.values())
    assert (s["true_positives"], s["false_positives"], s["false_negatives"]) == (3, 1, expected - 3)
    assert (s["precision"], s["recall"]) == (0.75, round(3 / expected, 4))
    assert (s["clean_fixtures"], s["noisy_clean_fixtures"], s["clean_false_positives"]) == (2, 1, 1)
    assert s["prompt_tokens"] > 0
    assert s["errors"] == 0
    # Every fixture went to the model once, with its diff framed as untrusted data.
    assert len(model.chat_requests) == len(FIXTURES)
    assert all("<<<UNTRUSTED diff" in r.text() for r in model.chat_requests)
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["rust-query-page"]["true_positives"] == 1
    assert by_name["python-clean-rename"]["unmatched"] == ["shop/money.py:10 error"]


def test_bench_hallucinated_evidence_is_dropped_by_the_real_verifier(model: ScriptedModel) -> None:
    fixture = CORPUS / "python-orders-filter.json"
    (e, _) = FIXTURES["python-orders-filter"].expected
    made_up = finding(e.path, e.line, "eval(request.args['q'])", severity="error")
    model.respond_with(lambda _r: reply(json.dumps(review_answer(made_up))))
    report = json.loads(run_cli("bench", "run", str(fixture), "--json").stdout)
    assert report["summary"]["true_positives"] == 0  # not in the diff: never counted


def test_bench_regression_against_a_baseline_exits_1_only_when_asked(
    model: ScriptedModel, tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"summary": {"precision": 1.0, "recall": 1.0}}))
    model.respond_with(_answer)
    told = run_cli("bench", "run", str(CORPUS), "--baseline", str(baseline))
    assert told.code == 0
    assert "regression:" in told.stderr
    assert "precision" in told.stdout
    failing = run_cli("bench", "run", str(CORPUS), "--baseline", str(baseline),
                      "--fail-on-regression", "--json")  # fmt: skip
    assert failing.code == 1
    assert json.loads(failing.stdout)["regressions"]
    # Its own output is a baseline it does not regress against.
    baseline.write_text(failing.stdout)
    same = run_cli("bench", "run", str(CORPUS), "--baseline", str(baseline), "--fail-on-regression")
    assert same.code == 0, same.output


def test_bench_reports_a_fixture_the_model_failed_and_exits_1(model: ScriptedModel) -> None:
    model.respond_with(lambda _r: server_error(400))
    ran = run_cli("bench", "run", str(CORPUS / "rust-query-page.json"), "--json")
    assert ran.code == 1
    (result,) = json.loads(ran.stdout)["results"]
    assert result["error"]


def test_bench_usage_errors(model: ScriptedModel, tmp_path: Path) -> None:
    assert run_cli("bench", "run", str(CORPUS), "--fail-on-regression").code == 2
    assert run_cli("bench", "run", str(tmp_path)).code == 1  # no fixtures there

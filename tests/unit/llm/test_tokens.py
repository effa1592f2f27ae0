"""The token estimate stays within its stated tolerance of a real BPE tokenizer's counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auto_review.llm import TOKEN_ESTIMATE_TOLERANCE, estimate_tokens, fits

# Reference counts were measured once, offline, with the cl100k_base tokenizer (the file names
# the BPE table's hash); the estimator itself never loads a tokenizer.
SAMPLE = json.loads(
    (Path(__file__).parents[2] / "data" / "llm" / "token_sample.json").read_text("utf-8")
)
TOTAL_TOLERANCE = 0.10


def _samples() -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = SAMPLE["samples"]
    return samples


@pytest.mark.parametrize("sample", _samples(), ids=lambda s: s["name"])
def test_estimate_tokens_is_within_tolerance_of_the_reference_count(
    sample: dict[str, Any],
) -> None:
    estimate = estimate_tokens(sample["text"])
    assert abs(estimate - sample["tokens"]) <= TOKEN_ESTIMATE_TOLERANCE * sample["tokens"]


def test_estimate_tokens_total_over_the_sample_is_within_ten_percent() -> None:
    reference = sum(s["tokens"] for s in _samples())
    estimate = sum(estimate_tokens(s["text"]) for s in _samples())
    assert abs(estimate - reference) <= TOTAL_TOLERANCE * reference


def test_estimate_tokens_covers_the_sample_kinds_it_claims() -> None:
    names = {s["name"] for s in _samples()}
    assert {"prose_en", "python", "go", "diff", "json", "cjk"} <= names


def test_estimate_tokens_of_empty_text_is_zero_and_grows_with_text() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("word") == 1
    assert estimate_tokens("word " * 100) > estimate_tokens("word " * 10)


def test_fits_keeps_the_estimators_margin() -> None:
    assert fits(800, 1000)
    assert not fits(801, 1000)
    assert fits(1000, 1000, margin=0)

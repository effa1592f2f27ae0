from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.fakes.openai_strict import strict_schema_problems

from auto_review.llm import response_format_for
from auto_review.review.findings import Finding, FindingOut, ReviewOutput, Severity
from auto_review.review.verify_model import _AgentAction, _Verification

GOOD = {
    "path": "a.py", "line_start": 3, "line_end": 2, "severity": "error", "category": "bug",
    "message": "m", "evidence": "x = 1", "suggestion": None,
}  # fmt: skip


@pytest.mark.parametrize("model", [ReviewOutput, _Verification, _AgentAction])
def test_output_schemas_are_valid_under_strict_mode(model: type) -> None:
    schema = response_format_for(model)["json_schema"]["schema"]
    assert strict_schema_problems(schema) == []


def test_review_output_rejects_smuggled_fields_and_unknown_severity() -> None:
    with pytest.raises(ValidationError):
        ReviewOutput.model_validate(
            {"summary": "", "walkthrough": "", "findings": [], "event": "APPROVED"}
        )
    with pytest.raises(ValidationError):
        FindingOut.model_validate({**GOOD, "severity": "auto_approve"})
    with pytest.raises(ValidationError):
        FindingOut.model_validate({**GOOD, "line_start": 0})


def test_finding_from_output_orders_lines_and_fingerprint_ignores_line_numbers() -> None:
    f = Finding.from_output(FindingOut.model_validate(GOOD))
    assert (f.line_start, f.line_end, f.severity) == (2, 3, Severity.ERROR)
    moved = f.moved(40, 41)
    assert moved.fingerprint == f.fingerprint
    assert moved.run_key != f.run_key

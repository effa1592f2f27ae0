"""Render a prepared review for a terminal or a tool: text, JSON, SARIF 2.1.0."""

from __future__ import annotations

from typing import Any

from auto_review import __version__
from auto_review.review._types import PreparedReview
from auto_review.review.findings import Severity

__all__ = ["to_json", "to_sarif", "to_text"]

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def to_text(prepared: PreparedReview) -> str:
    """``path:line: severity [category] message`` per finding, then the summary and gaps."""
    lines = [
        f"{f.path}:{f.line_start}: {f.severity.value} [{f.category}] {f.message}"
        for f in sorted(prepared.findings, key=lambda f: (f.path, f.line_start))
    ]
    lines += ["", *prepared.report.summaries]
    for path, reason in prepared.unreviewed:
        lines.append(f"not reviewed: {path} ({reason})")
    lines += [f"note: {n}" for n in prepared.report.notes]
    lines.append(f"verdict: {prepared.event.value}; {prepared.status.description}")
    return "\n".join(lines).strip() + "\n"


def to_json(prepared: PreparedReview) -> dict[str, Any]:
    return {
        "event": prepared.event.value,
        "status": {
            "state": prepared.status.state.value,
            "description": prepared.status.description,
        },
        "summary": list(prepared.report.summaries),
        "findings": [
            {
                "path": f.path,
                "line_start": f.line_start,
                "line_end": f.line_end,
                "severity": f.severity.value,
                "category": f.category,
                "message": f.message,
                "evidence": f.evidence,
                "suggestion": f.suggestion,
            }
            for f in prepared.findings
        ],
        "unreviewed": [{"path": p, "reason": r} for p, r in prepared.unreviewed],
        "notes": list(prepared.report.notes),
    }


def to_sarif(prepared: PreparedReview) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run and one result per finding."""
    rules = sorted({f.category for f in prepared.findings})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "auto-review",
                        "version": __version__,
                        "informationUri": "https://example.invalid/auto-review",
                        "rules": [{"id": r, "name": r} for r in rules],
                    }
                },
                "results": [
                    {
                        "ruleId": f.category,
                        "level": _SARIF_LEVEL[f.severity],
                        "message": {"text": f.message},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": f.path},
                                    "region": {"startLine": f.line_start, "endLine": f.line_end},
                                }
                            }
                        ],
                    }
                    for f in prepared.findings
                ],
            }
        ],
    }

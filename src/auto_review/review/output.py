"""Render a prepared review for a terminal or a tool: text, JSON, SARIF 2.1.0.

Text goes to a terminal, and most of it is untrusted (model output a branch can steer, file
names): ``printable`` shows every control character and bidi override as an escape, so none
can write the clipboard (OSC 52), clear the screen, retitle the window or reorder what is read.
JSON and SARIF are escaped by the encoder.
"""

from __future__ import annotations

from typing import Any

from auto_review import __version__
from auto_review.review._types import PreparedReview
from auto_review.review.findings import Severity

__all__ = ["printable", "to_json", "to_sarif", "to_text"]

# C0 but newline and tab, DEL, C1, and the bidi embeddings, overrides and isolates.
_UNPRINTABLE = frozenset(
    [
        *range(0x00, 0x09),
        *range(0x0B, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)


def printable(text: str) -> str:
    """``text`` for a terminal: control characters become visible ``\\x..``/``\\u....``."""
    if not any(ord(ch) in _UNPRINTABLE for ch in text):
        return text
    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if ord(ch) in _UNPRINTABLE
        else ch
        for ch in text
    )


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
    return printable("\n".join(lines).strip()) + "\n"


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

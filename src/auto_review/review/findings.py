"""What the model must return (``ReviewOutput``), and the finding every later stage passes on.

``ReviewOutput`` is the wire contract: a closed set of keys, ``extra="forbid"`` everywhere and a
closed severity enum, so nothing the model adds (``"approve": true``, ``"severity":
"auto_approve"``) can reach the forge. The review event is never part of it: ``publish.py``
computes it from the verified findings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Finding",
    "FindingOut",
    "ReviewOutput",
    "Severity",
    "normalise",
]


class Severity(StrEnum):
    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.NOTE: 0, Severity.WARNING: 1, Severity.ERROR: 2}

Category = Literal[
    "bug", "security", "performance", "error-handling", "concurrency", "maintainability", "other"
]


class FindingOut(BaseModel):
    """One finding as the model writes it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=1000, description="File path as in the diff.")
    line_start: int = Field(ge=1, description="First new-file line (a __new hunk__ number).")
    line_end: int = Field(ge=1, description="Last new-file line (>= line_start).")
    severity: Literal["note", "warning", "error"]
    category: Category
    message: str = Field(min_length=1, max_length=4000, description="The problem and why.")
    evidence: str = Field(
        min_length=1,
        max_length=2000,
        description="The exact code from the new file at those lines, copied verbatim.",
    )
    suggestion: str | None = Field(description="Replacement code for those lines, or null.")


class ReviewOutput(BaseModel):
    """The whole answer of one review call."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(max_length=4000, description="1-3 sentences on what the change does.")
    walkthrough: str = Field(max_length=8000, description="Short per-file bullets, or empty.")
    findings: list[FindingOut] = Field(max_length=50)


def normalise(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped: how code is compared."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Finding:
    """A finding between stages; ``anchor`` is the new-side line an inline comment goes to."""

    path: str
    line_start: int
    line_end: int
    severity: Severity
    category: str
    message: str
    evidence: str
    suggestion: str | None = None
    anchor: int | None = None

    @classmethod
    def from_output(cls, out: FindingOut) -> Finding:
        start, end = sorted((out.line_start, out.line_end))
        return cls(
            path=out.path.strip().removeprefix("./"),
            line_start=start,
            line_end=end,
            severity=Severity(out.severity),
            category=out.category,
            message=out.message.strip(),
            evidence=out.evidence,
            suggestion=out.suggestion,
        )

    def moved(self, start: int, end: int, anchor: int | None = None) -> Finding:
        return replace(self, line_start=start, line_end=end, anchor=anchor)

    @property
    def fingerprint(self) -> str:
        """Stable across commits (no line numbers): path, category and the code it is about."""
        key = "\0".join((self.path, self.category, normalise(self.evidence)))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    @property
    def run_key(self) -> tuple[str, int, str]:
        """Identity within one run: the same message at the same place is one finding."""
        return (self.path, self.line_start, normalise(self.message).lower())

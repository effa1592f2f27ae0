"""Deterministic verification: a finding must point at real, changed code it quotes exactly.

``check_findings`` keeps a finding only when

1. its path is a file of the reviewed diff;
2. its ``evidence`` (whitespace-normalised) occurs in the new file at the cited lines; when it
   occurs instead within ``_SLACK`` lines of them, the finding is moved there (models are often
   off by a line or two), otherwise it is dropped as hallucinated;
3. at least one cited line is shown on the new side of the diff (added or context), which is
   where the forge accepts an inline comment; that line (an added one when there is one)
   becomes the ``anchor``.

Every drop is counted with its reason; nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import re2

from auto_review.review.diff import FileDiff
from auto_review.review.findings import Finding, normalise

__all__ = ["VerifyResult", "check_findings"]

_SLACK = 3
# Models sometimes copy our rendering prefix ("12 +code") into the evidence; strip that only.
_RENDER_PREFIX = re2.compile(r"^\s*\d+ [+ ] ?")

FileLines = Callable[[str], Sequence[str] | None]


@dataclass(frozen=True)
class VerifyResult:
    kept: tuple[Finding, ...]
    dropped: tuple[tuple[Finding, str], ...]
    moved: int

    @property
    def drop_reasons(self) -> Counter[str]:
        return Counter(reason for _, reason in self.dropped)


def _evidence(text: str) -> str:
    lines = [_RENDER_PREFIX.sub("", line) for line in text.splitlines()]
    return normalise("\n".join(lines))


def _window(lines: Sequence[str] | Mapping[int, str], start: int, end: int) -> str:
    if isinstance(lines, Mapping):
        return normalise(" ".join(lines.get(n, "") for n in range(start, end + 1)))
    return normalise(" ".join(lines[max(start, 1) - 1 : max(end, 0)]))


def _locate(
    finding: Finding, evidence: str, lines: Sequence[str] | Mapping[int, str], last: int
) -> tuple[int, int] | None:
    """Where the evidence is: the cited span if it is there, else the nearest span near it."""
    start, end = finding.line_start, min(finding.line_end, max(last, 1))
    if start <= last and evidence in _window(lines, start, end):
        return start, end
    quoted_lines = sum(1 for line in finding.evidence.splitlines() if line.strip())
    height = max(end - start, quoted_lines - 1)
    candidates: list[tuple[int, int, int]] = []
    for shift in range(-_SLACK, _SLACK + 1):
        for extra in range(0, 3):
            s, e = start + shift, start + shift + height + extra
            if s < 1 or e > last:
                continue
            if evidence in _window(lines, s, e):
                candidates.append((abs(shift) + extra, s, e))
                break
    if not candidates:
        return None
    _, s, e = min(candidates)
    # Shrink to the smallest span still holding the evidence, so the anchor is precise.
    while s < e and evidence in _window(lines, s + 1, e):
        s += 1
    while e > s and evidence in _window(lines, s, e - 1):
        e -= 1
    return s, e


def check_findings(
    findings: Sequence[Finding], files: Mapping[str, FileDiff], file_lines: FileLines
) -> VerifyResult:
    """Keep findings whose evidence is at their cited, commentable new-side lines."""
    kept: list[Finding] = []
    dropped: list[tuple[Finding, str]] = []
    moved = 0
    for finding in findings:
        fd = files.get(finding.path)
        if fd is None:
            dropped.append((finding, "path is not part of the reviewed diff"))
            continue
        evidence = _evidence(finding.evidence)
        if not evidence:
            dropped.append((finding, "no evidence quoted"))
            continue
        text = file_lines(finding.path)
        source: Sequence[str] | Mapping[int, str] = text if text is not None else fd.new_text
        last = len(text) if text is not None else max(fd.new_text, default=0)
        span = _locate(finding, evidence, source, last)
        if span is None:
            dropped.append((finding, "evidence not found at the cited lines"))
            continue
        start, end = span
        # Prefer an added line: that is the code this PR is responsible for.
        added, commentable = fd.added, fd.commentable
        cited = range(start, end + 1)
        anchor = next((n for n in cited if n in added), None)
        if anchor is None:
            anchor = next((n for n in cited if n in commentable), None)
        if anchor is None:
            dropped.append((finding, "cited lines are not part of the diff"))
            continue
        if (start, end) != (finding.line_start, finding.line_end):
            moved += 1
        kept_finding = finding.moved(start, end, anchor)
        if finding.suggestion is not None and normalise(finding.suggestion) == _window(
            source, start, end
        ):
            # A "fix" identical to the code already there is no fix (often the PR's own change).
            kept_finding = replace(kept_finding, suggestion=None)
        kept.append(kept_finding)
    return VerifyResult(tuple(kept), tuple(dropped), moved)

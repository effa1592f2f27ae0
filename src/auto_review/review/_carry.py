"""Carry-over: an incremental review keeps earlier findings whose code is unchanged.

An incremental review sees only the new commits, so "nothing in the delta" must not clear what
was posted earlier. An earlier finding stays open while its file still contains its quoted
evidence (whitespace-normalised) at head, unless this run re-found it. Open errors keep the
review blocking; an open finding of any severity keeps it from approving.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from auto_review.memory.history import PostedFinding
from auto_review.review.findings import normalise

__all__ = ["still_open"]

FileText = Callable[[str], Awaitable[str | None]]


async def still_open(
    posted: Sequence[PostedFinding], current_fingerprints: set[str], file_text: FileText
) -> list[PostedFinding]:
    """Earlier findings not re-found now whose evidence is still in the file at head."""
    open_ones: list[PostedFinding] = []
    cache: dict[str, str | None] = {}
    for finding in posted:
        if finding.fingerprint in current_fingerprints:
            continue
        if finding.path not in cache:
            text = await file_text(finding.path)
            cache[finding.path] = None if text is None else normalise(text)
        evidence = normalise(finding.evidence)
        haystack = cache[finding.path]
        if evidence and haystack is not None and evidence in haystack:
            open_ones.append(finding)
    return open_ones

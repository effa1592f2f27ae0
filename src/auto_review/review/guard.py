"""Deterministic guards between verification and publishing.

In order: the severity floor; findings on files outside the reviewed diff; duplicates within the
run (same path, line and message, or same fingerprint; the most severe copy stays); findings the
bot already posted on this PR in an earlier run (recognised by the fingerprint marker
``publish.py`` writes into each comment, or by the same message at the same place); finally at
most ``MAX_FINDINGS`` are kept, most severe first. Only comments *authored by the bot* are
trusted for the cross-run check: anyone else could paste a marker to silence a finding. Even
there only the comment's last line counts, where ``publish.py`` puts it: a verbatim suggestion
block above it may hold any text the model wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import re2

from auto_review.hosts import Comment
from auto_review.review.defang import defang
from auto_review.review.findings import Finding, Severity, normalise

__all__ = [
    "MAX_FINDINGS",
    "GuardResult",
    "finding_marker",
    "guard_findings",
    "posted_fingerprints",
]

MAX_FINDINGS = 25  # inline comments per review; a wall of comments gets ignored

_MARKER = re2.compile(r"^<!-- auto-review:finding fp=([0-9a-f]{16}) sev=(note|warning|error) -->$")


def finding_marker(finding: Finding) -> str:
    """The hidden line that lets later runs recognise this finding's comment."""
    return f"<!-- auto-review:finding fp={finding.fingerprint} sev={finding.severity} -->"


def posted_fingerprints(comments: Iterable[Comment], bot_login: str) -> dict[str, Severity]:
    """Fingerprints (and severities) of findings the bot itself posted earlier."""
    found: dict[str, Severity] = {}
    for comment in comments:
        if comment.author_login.lower() != bot_login.lower():
            continue
        match = _MARKER.search(comment.body.rstrip().rsplit("\n", 1)[-1])
        if match is not None:
            found[match.group(1)] = Severity(match.group(2))
    return found


@dataclass(frozen=True)
class GuardResult:
    kept: tuple[Finding, ...]
    below_floor: int
    off_diff: int
    duplicates: int
    already_posted: int
    over_cap: int = 0
    repeated: tuple[Finding, ...] = ()  # verified again now, but already posted earlier


def guard_findings(
    findings: Sequence[Finding],
    *,
    floor: Severity,
    reviewed_paths: frozenset[str],
    earlier: Sequence[Comment] = (),
    bot_login: str = "",
    max_findings: int = MAX_FINDINGS,
) -> GuardResult:
    """Apply the floor, the path guard, both de-duplications and the cap, counting each."""
    posted = posted_fingerprints(earlier, bot_login) if bot_login else {}
    bot_comments = [
        c for c in earlier if bot_login and c.author_login.lower() == bot_login.lower() and c.path
    ]
    kept: list[Finding] = []
    repeated: list[Finding] = []
    seen: set[tuple[str, int, str]] = set()
    seen_fp: set[str] = set()
    below = off = dups = already = 0
    # closes F71: the most severe first, so a duplicate dropped is never the blocking one (a
    # fingerprint has no severity; a note listed before an error on the same code hid it).
    for finding in sorted(findings, key=lambda f: -f.severity.rank):
        if finding.severity.rank < floor.rank:
            below += 1
            continue
        if finding.path not in reviewed_paths:
            off += 1
            continue
        if finding.run_key in seen or finding.fingerprint in seen_fp:
            dups += 1
            continue
        if finding.fingerprint in posted or _said_before(finding, bot_comments):
            already += 1
            repeated.append(finding)  # not posted again, but still there: it still counts
            continue
        seen.add(finding.run_key)
        seen_fp.add(finding.fingerprint)
        kept.append(finding)
    # Noise control: the most severe findings first, in file order; the rest are only counted.
    kept.sort(key=lambda f: (-f.severity.rank, f.path, f.line_start))
    over = max(0, len(kept) - max_findings)
    return GuardResult(tuple(kept[:max_findings]), below, off, dups, already, over, tuple(repeated))


def _said_before(finding: Finding, bot_comments: Sequence[Comment]) -> bool:
    # Compared as posted: the comment holds the defanged message.
    message = normalise(defang(finding.message)).lower()
    return any(
        c.path == finding.path
        and c.line in (finding.anchor, finding.line_start)
        and message in normalise(c.body).lower()
        for c in bot_comments
    )

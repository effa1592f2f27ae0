"""Unified-diff helpers of the fake forge: which lines a hunk covers, the hunk around a line."""

from __future__ import annotations

import re

__all__ = ["diff_line_sets", "hunk_around"]

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def diff_line_sets(patch: str) -> tuple[set[int], set[int]]:
    """New-side and old-side line numbers covered by the hunks of a one-file unified diff."""
    new_lines: set[int] = set()
    old_lines: set[int] = set()
    old_no = new_no = 0
    in_hunk = False
    for line in patch.splitlines():
        match = _HUNK.match(line)
        if match:
            old_no, new_no = int(match.group(1)), int(match.group(3))
            in_hunk = True
            continue
        if not in_hunk or line.startswith("\\"):
            continue
        if line.startswith("+"):
            new_lines.add(new_no)
            new_no += 1
        elif line.startswith("-"):
            old_lines.add(old_no)
            old_no += 1
        elif line.startswith(" ") or line == "":
            new_lines.add(new_no)
            old_lines.add(old_no)
            new_no += 1
            old_no += 1
        else:
            in_hunk = False
    return new_lines, old_lines


def hunk_around(patch: str, new_line: int, old_line: int) -> str:
    """The hunk header plus the lines up to the commented one, like Forgejo's ``diff_hunk``."""
    out: list[str] = []
    old_no = new_no = 0
    for line in patch.splitlines():
        match = _HUNK.match(line)
        if match:
            old_no, new_no = int(match.group(1)), int(match.group(3))
            out = [line]
            continue
        if not out:
            continue
        out.append(line)
        if line.startswith("+"):
            hit = new_no == new_line
            new_no += 1
        elif line.startswith("-"):
            hit = old_no == old_line
            old_no += 1
        else:
            hit = new_no == new_line or old_no == old_line
            new_no += 1
            old_no += 1
        if hit:
            return "\n".join(out)
    return "\n".join(out)

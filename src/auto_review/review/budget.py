"""Fit the rendered diff into the model's context window: split, never truncate silently.

Each reviewed file has a full rendering (with extra context) and a compact one (hunks only).
``plan_calls`` packs files into at most ``max_calls`` groups whose prompts fit the window left
after the fixed prompt and the output reserve. A file that fits in no group, even compact, is
*unreviewed* with a reason, and the summary names it. Code files are packed before prose and
configuration so that, when something must give, it is the least likely place for a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

__all__ = ["BudgetPlan", "CallGroup", "RenderedFile", "plan_calls"]

_PROSE = frozenset({".md", ".rst", ".txt", ".adoc", ".csv", ".svg", ".json", ".lock", ".xml"})
_CONFIG = frozenset({".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".properties"})
# Estimators are approximate; leave a margin so a group near the limit still fits for real.
_SAFETY = 0.9


@dataclass(frozen=True)
class RenderedFile:
    path: str
    full: str
    compact: str
    extra_tokens: int = 0  # what the file adds besides its diff (its code context)


@dataclass
class CallGroup:
    """The files of one review call and their rendered text (full or compact per file)."""

    paths: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    tokens: int = 0

    @property
    def text(self) -> str:
        return "\n".join(self.parts)


@dataclass(frozen=True)
class BudgetPlan:
    groups: tuple[CallGroup, ...]
    unreviewed: tuple[tuple[str, str], ...]  # (path, reason)
    tokens_per_call: int


def _priority(path: str) -> int:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _PROSE:
        return 2
    if suffix in _CONFIG:
        return 1
    return 0


def plan_calls(
    files: Sequence[RenderedFile],
    *,
    context_tokens: int,
    output_tokens: int,
    fixed_tokens: int,
    max_calls: int,
    estimate: Callable[[str], int],
) -> BudgetPlan:
    """Pack ``files`` into at most ``max_calls`` groups that each fit the context window."""
    room = int((context_tokens - output_tokens - fixed_tokens) * _SAFETY)
    unreviewed: list[tuple[str, str]] = []
    groups: list[CallGroup] = []
    if room <= 0:
        return BudgetPlan(
            (), tuple((f.path, "the prompt leaves no room for a diff") for f in files), 0
        )
    ordered = sorted(files, key=lambda f: (_priority(f.path), f.path))
    for rf in ordered:
        full_tokens = estimate(rf.full) + rf.extra_tokens
        text, tokens = rf.full, full_tokens
        if tokens > room:
            text, tokens = rf.compact, estimate(rf.compact) + rf.extra_tokens
        if tokens > room:
            unreviewed.append((rf.path, f"too large for one model call (~{full_tokens} tokens)"))
            continue
        # First fit; the full rendering is preferred, but compact may squeeze into a group.
        target = next((g for g in groups if g.tokens + tokens <= room), None)
        if target is None and len(groups) < max_calls:
            target = CallGroup()
            groups.append(target)
        if target is None and text is rf.full:
            compact_tokens = estimate(rf.compact) + rf.extra_tokens
            target = next((g for g in groups if g.tokens + compact_tokens <= room), None)
            text, tokens = rf.compact, compact_tokens
        if target is None:
            unreviewed.append((rf.path, f"over the limit of {max_calls} model calls per review"))
            continue
        target.paths.append(rf.path)
        target.parts.append(text)
        target.tokens += tokens
    return BudgetPlan(tuple(groups), tuple(unreviewed), room)

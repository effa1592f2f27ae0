"""What a handler returns, and the fixed texts chat posts (help, refusals)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from auto_review.chat._parser import KNOWN_KEYWORDS, Command
from auto_review.hosts import InlineComment, ReviewEvent
from auto_review.review.defang import fence_for

__all__ = [
    "ReviewPost",
    "Turnout",
    "fence_for",
    "help_text",
    "quote",
    "unknown_text",
]


@dataclass(frozen=True)
class ReviewPost:
    """A review to post at the PR head (suggestions, or an approval)."""

    event: ReviewEvent
    body: str
    comments: tuple[InlineComment, ...] = ()


@dataclass(frozen=True)
class Turnout:
    """A handler's result: a reply in the thread where it was asked, and maybe a review."""

    text: str
    review: ReviewPost | None = None
    # Called with the review's id once it is posted (e.g. to record an approval override).
    on_review_posted: Callable[[int], None] | None = field(default=None, compare=False)


# One line per command; every keyword the parser maps appears here (a test keeps them in step).
_HELP_ROWS = (
    ("help", "this list"),
    ("review", "review the current head now (also `re-review`; bypasses the CI gate)"),
    ("full review", "review the whole PR again, ignoring what was reviewed before"),
    ("pause", "stop automatic reviews on this PR (`resume` restarts them)"),
    ("resume", "restart automatic reviews on this PR"),
    ("ask <question>", "answer a question about this PR (free text after the mention works too)"),
    ("explain", "on one of my inline comments: the reasoning and evidence behind it"),
    ("remember <text>", "keep a note for future reviews of this repository"),
    ("forget <id>", "delete a note of this repository"),
    ("learnings", "list this repository's notes"),
    ("autofix", "suggest fixes as suggestion blocks on lines of the diff"),
    ("docstring", "suggest docstrings for changed code"),
    ("tests", "suggest unit tests for changed code"),
    ("config", "show the configuration that applies to this PR"),
    ("approve <reason>", "override my requested changes (listed override approvers only)"),
)


def help_text(mention: str) -> str:
    """The command list, one line each, written with the handle users type."""
    rows = "\n".join(f"- `@{mention} {cmd}`: {what}" for cmd, what in _HELP_ROWS)
    return (
        f"Commands start a line with `@{mention}`. Quoted lines and code blocks are ignored.\n\n"
        f"{rows}\n\nCommands that use the model or change state need write access to the "
        "repository. See docs/USER-GUIDE.md for limits and details."
    )


def unknown_text(command: Command, mention: str) -> str:
    """Help, led by a guess at what was meant."""
    close = difflib.get_close_matches(command.keyword, KNOWN_KEYWORDS, n=1, cutoff=0.6)
    guess = f" Did you mean `@{mention} {close[0]}`?" if close else ""
    return f"I don't know the command `{_inline(command.keyword)}`.{guess}\n\n{help_text(mention)}"


def quote(text: str, *, limit: int = 300) -> str:
    """``text`` as a Markdown quote, cut to ``limit`` characters."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return "\n".join(f"> {line}" for line in cut.splitlines() or [""])


def _inline(text: str) -> str:
    return text.replace("`", "'")[:40]

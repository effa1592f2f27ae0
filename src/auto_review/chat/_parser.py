"""Find ``@bot`` commands in a comment body: pure text in, ``Command`` values out.

Rules (docs/USER-GUIDE.md repeats them for users):

- A command is a line that *starts* with ``@<mention_name>`` (leading spaces allowed), compared
  without regard to case. When the name is ``auto-review`` the handle ``@auto_review`` also works.
  The character after the handle must be the end of the line, whitespace or one of ``:,!?.``, so
  ``@auto-reviewer`` is somebody else.
- Lines inside fenced code blocks (```` ``` ```` or ``~~~``), indented code (a tab or four
  spaces), quoted lines (``>``) and lines starting with inline code are never commands: quoting
  or showing a command must not run it.
- The first word (two for ``full review``, ``generate docstrings``, ``generate tests``) is the
  keyword. The rest of the line, plus the following lines up to the next command line, is the
  argument of the commands that take text (ask, remember, approve); others ignore it.
- Several command lines in one comment are several commands, in order, at most
  ``MAX_COMMANDS`` of them; further ones are dropped and the first reply says so.
- A single unknown word is ``UNKNOWN`` (answered with help and a suggestion); longer text that
  is not a command is a question (``ASK``).

Only ``str`` methods are used: no regular expression ever sees user text here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "MAX_ARGUMENT_CHARS",
    "MAX_COMMANDS",
    "MAX_COMMENT_CHARS",
    "Command",
    "CommandKind",
    "ParsedComment",
    "mention_handles",
    "parse_comment",
]

MAX_COMMANDS = 3
# Longer arguments are cut (and flagged): a comment is not a channel for megabytes of prompt.
MAX_ARGUMENT_CHARS = 4000
# A comment is read this far, wherever its text came from: the gateway keeps this much of a
# delivered one, and a job compares that with the text the forge holds now (chat/_service.py).
# closes: a command past the cut told the two apart, and the job took the comment as edited (F63)
MAX_COMMENT_CHARS = 65_536

_SEPARATORS = ":,!?."


class CommandKind(StrEnum):
    HELP = "help"
    REVIEW = "review"
    FULL_REVIEW = "full review"
    PAUSE = "pause"
    RESUME = "resume"
    ASK = "ask"
    EXPLAIN = "explain"
    REMEMBER = "remember"
    FORGET = "forget"
    LEARNINGS = "learnings"
    AUTOFIX = "autofix"
    DOCSTRING = "docstring"
    TESTS = "tests"
    CONFIG = "config"
    APPROVE = "approve"
    UNKNOWN = "unknown"


# Keyword (lower case) -> kind. Two-word keywords are looked up first.
_KEYWORDS: dict[str, CommandKind] = {
    "help": CommandKind.HELP,
    "?": CommandKind.HELP,
    "-h": CommandKind.HELP,
    "--help": CommandKind.HELP,
    "commands": CommandKind.HELP,
    "review": CommandKind.REVIEW,
    "re-review": CommandKind.REVIEW,
    "rereview": CommandKind.REVIEW,
    "review-again": CommandKind.REVIEW,
    "full-review": CommandKind.FULL_REVIEW,
    "pause": CommandKind.PAUSE,
    "resume": CommandKind.RESUME,
    "ask": CommandKind.ASK,
    "explain": CommandKind.EXPLAIN,
    "remember": CommandKind.REMEMBER,
    "forget": CommandKind.FORGET,
    "learnings": CommandKind.LEARNINGS,
    "autofix": CommandKind.AUTOFIX,
    "auto-fix": CommandKind.AUTOFIX,
    "docstring": CommandKind.DOCSTRING,
    "docstrings": CommandKind.DOCSTRING,
    "tests": CommandKind.TESTS,
    "unit-tests": CommandKind.TESTS,
    "config": CommandKind.CONFIG,
    "configuration": CommandKind.CONFIG,
    "approve": CommandKind.APPROVE,
    "override": CommandKind.APPROVE,
}
_TWO_WORD_KEYWORDS: dict[tuple[str, str], CommandKind] = {
    ("full", "review"): CommandKind.FULL_REVIEW,
    ("generate", "docstrings"): CommandKind.DOCSTRING,
    ("generate", "docstring"): CommandKind.DOCSTRING,
    ("generate", "tests"): CommandKind.TESTS,
    ("unit", "tests"): CommandKind.TESTS,
    ("show", "config"): CommandKind.CONFIG,
    ("show", "learnings"): CommandKind.LEARNINGS,
}
# Commands whose argument is free text (the rest of the line and the following lines).
_TAKES_TEXT = frozenset({CommandKind.ASK, CommandKind.REMEMBER, CommandKind.APPROVE})

KNOWN_KEYWORDS: tuple[str, ...] = tuple(sorted(_KEYWORDS)) + tuple(
    " ".join(pair) for pair in sorted(_TWO_WORD_KEYWORDS)
)


@dataclass(frozen=True)
class Command:
    """One command line. ``argument`` is the text after the keyword (and following lines)."""

    kind: CommandKind
    argument: str = ""
    keyword: str = ""  # as the user typed it, lower-cased; for UNKNOWN the unknown word
    line: int = 0  # 0-based line number of the command line in the body
    truncated: bool = False  # the argument was cut at MAX_ARGUMENT_CHARS


@dataclass(frozen=True)
class ParsedComment:
    commands: tuple[Command, ...]
    dropped: int = 0  # command lines past MAX_COMMANDS

    @property
    def mentioned(self) -> bool:
        return bool(self.commands)


def mention_handles(mention_name: str) -> tuple[str, ...]:
    """The ``@handles`` that address the bot, lower-cased."""
    name = mention_name.strip().lstrip("@").lower()
    handles = [f"@{name}"]
    if name == "auto-review":
        handles.append("@auto_review")
    return tuple(handles)


def parse_comment(body: str, mention_name: str) -> ParsedComment:
    """Every command in ``body`` addressed to ``mention_name`` (see the module rules)."""
    handles = mention_handles(mention_name)
    lines = body[:MAX_COMMENT_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    starts: list[tuple[int, str]] = []  # (line index, text after the handle)
    fence: str | None = None
    for index, raw in enumerate(lines):
        stripped = raw.strip()
        marker = _fence_marker(stripped)
        if fence is not None:
            # A closing fence: same character, at least as long, no info string after it.
            if _closes(fence, marker, stripped):
                fence = None
            continue
        if marker is not None:
            fence = marker
            continue
        if _is_indented_code(raw):
            continue
        rest = _after_handle(stripped, handles)
        if rest is not None:
            starts.append((index, rest))
    commands = []
    for position, (index, rest) in enumerate(starts[:MAX_COMMANDS]):
        end = starts[position + 1][0] if position + 1 < len(starts) else len(lines)
        commands.append(_classify(rest, lines[index + 1 : end], index))
    return ParsedComment(tuple(commands), dropped=max(0, len(starts) - MAX_COMMANDS))


def _fence_marker(stripped: str) -> str | None:
    """The run of backticks or tildes opening ``stripped`` when it is a fence line (>= 3)."""
    for char in "`~":
        if stripped.startswith(char * 3):
            length = len(stripped) - len(stripped.lstrip(char))
            return char * length
    return None


def _closes(fence: str, marker: str | None, stripped: str) -> bool:
    return (
        marker is not None
        and marker[0] == fence[0]
        and len(marker) >= len(fence)
        and (stripped == marker)
    )


def _is_indented_code(raw: str) -> bool:
    return raw.startswith(("\t", "    ")) and bool(raw.strip())


def _after_handle(stripped: str, handles: tuple[str, ...]) -> str | None:
    """The text after a leading handle, or ``None`` when the line does not start with one."""
    lowered = stripped.lower()
    for handle in handles:
        if not lowered.startswith(handle):
            continue
        tail = stripped[len(handle) :]
        if tail and not (tail[0].isspace() or tail[0] in _SEPARATORS):
            continue  # "@auto-reviewer" is somebody else
        return tail.lstrip(_SEPARATORS + " \t").rstrip()
    return None


def _classify(rest: str, following: list[str], line: int) -> Command:
    words = rest.split()
    lowered = [w.lower() for w in words]
    kind: CommandKind | None = None
    keyword = ""
    consumed = 0
    if len(lowered) >= 2 and (lowered[0], lowered[1]) in _TWO_WORD_KEYWORDS:
        kind = _TWO_WORD_KEYWORDS[(lowered[0], lowered[1])]
        keyword, consumed = f"{lowered[0]} {lowered[1]}", 2
    elif lowered and lowered[0].rstrip(":") in _KEYWORDS:
        keyword = lowered[0].rstrip(":")
        kind, consumed = _KEYWORDS[keyword], 1
    extra = _trim_block(following)
    if kind is None:
        if not words:
            # "@bot" alone is a request for help; "@bot" followed by prose is a question.
            if extra:
                return _with_argument(CommandKind.ASK, extra, "", line)
            return Command(CommandKind.HELP, line=line)
        if len(words) == 1 and not extra and not rest.endswith("?"):
            return Command(CommandKind.UNKNOWN, keyword=lowered[0][:40], line=line)
        # Free-form text is a question: the whole line (and what follows) is the argument.
        text = rest if not extra else f"{rest}\n{extra}"
        return _with_argument(CommandKind.ASK, text, "", line)
    argument = _drop_words(rest, consumed)
    if kind in _TAKES_TEXT and extra:
        argument = f"{argument}\n{extra}" if argument else extra
    return _with_argument(kind, argument, keyword, line)


def _with_argument(kind: CommandKind, text: str, keyword: str, line: int) -> Command:
    text = text.strip()
    truncated = len(text) > MAX_ARGUMENT_CHARS
    return Command(kind, text[:MAX_ARGUMENT_CHARS], keyword, line, truncated)


def _drop_words(text: str, count: int) -> str:
    rest = text
    for _ in range(count):
        rest = rest.lstrip()
        cut = 0
        while cut < len(rest) and not rest[cut].isspace():
            cut += 1
        rest = rest[cut:]
    return rest.strip()


def _trim_block(lines: list[str]) -> str:
    """Following lines as one block, without leading or trailing blank lines."""
    return "\n".join(lines).strip("\n").rstrip()

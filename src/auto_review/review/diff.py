"""Unified diff -> files, hunks and numbered lines; rendering for the model.

``parse_diff`` reads git's unified diff once. Every later stage works on the result: triage on
paths, the budget on rendered sizes, the verifier and the publisher on ``commentable`` new-side
line numbers. ``render_file`` presents a file PR-Agent style: per hunk a ``__new hunk__`` block
whose lines carry explicit new-file line numbers (the only numbers the model may cite) and an
unnumbered ``__old hunk__`` block with just the removed lines, so the model never has to
compute line numbers from ``@@`` headers itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import re2

__all__ = [
    "DiffLine",
    "FileDiff",
    "Hunk",
    "parse_diff",
    "render_file",
]

LineKind = Literal["+", "-", " "]
FileStatus = Literal["added", "modified", "removed", "renamed"]

# Our own fixed patterns, but they run over repository text: linear-time engine (DESIGN.md).
_HUNK_HEADER = re2.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
# A line that opens a function, method or type in the common languages; used to extend context
# upward to the enclosing definition ("dynamic context").
_DEFINITION = re2.compile(
    r"^\s*(?:(?:export|default|public|private|protected|internal|static|async|abstract|final|"
    r"override|inline|virtual|pub(?:\([a-z]+\))?|unsafe|extern|open|data|suspend|sealed)\s+)*"
    r"(?:def|class|func|fn|function|fun|interface|struct|enum|trait|impl|module|type|object|"
    r"namespace|record)\b"
)
# A C-family function signature: a type and name then "(" with no ";" (not a call statement).
_C_SIGNATURE = re2.compile(r"^[A-Za-z_][\w:<>,\s\*&]*\s[\*&]?[A-Za-z_][\w:]*\s*\([^;]*$")
_NO_EXTRA_CONTEXT = (".md", ".txt", ".rst")
# Diff lines one PR may have parsed into objects. Each costs ~200 bytes parsed (a 4 MiB diff of
# one-character lines peaks at ~400 MiB) and the forge may send 32 MiB; the model sees at most
# AR_MAX_LLM_CALLS context windows, far fewer lines than this. A file past the budget keeps its
# name and status (``oversized``) and is skipped as too large, never silently dropped.
MAX_DIFF_LINES = 200_000


@dataclass(frozen=True)
class DiffLine:
    kind: LineKind
    old_no: int | None
    new_no: int | None
    text: str


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    section: str  # the text git prints after the second "@@"
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True)
class FileDiff:
    """One file of a diff. ``path`` is the new path (the old path for a removed file)."""

    path: str
    old_path: str | None
    status: FileStatus
    hunks: tuple[Hunk, ...]
    binary: bool = False
    new_text: dict[int, str] = field(default_factory=dict, compare=False, repr=False)
    oversized: bool = False  # past MAX_DIFF_LINES: no hunks were parsed
    new_blob: str = ""  # the post-image object id of the ``index`` line (zeros: removed)

    @property
    def commentable(self) -> frozenset[int]:
        """New-side line numbers shown in the diff (added or context): a comment may anchor here."""
        return frozenset(self.new_text)

    @property
    def added(self) -> frozenset[int]:
        return frozenset(
            ln.new_no for h in self.hunks for ln in h.lines if ln.kind == "+" and ln.new_no
        )

    @property
    def additions(self) -> int:
        return sum(1 for h in self.hunks for ln in h.lines if ln.kind == "+")

    @property
    def deletions(self) -> int:
        return sum(1 for h in self.hunks for ln in h.lines if ln.kind == "-")


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual file names (``"b/caf\\303\\251"``)."""
    if not (len(path) >= 2 and path[0] == '"' and path[-1] == '"'):
        return path
    raw = path[1:-1]
    out = bytearray()
    i = 0
    escapes = {"n": 10, "t": 9, '"': 34, "\\": 92, "a": 7, "b": 8, "f": 12, "r": 13, "v": 11}
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            octal = raw[i + 1 : i + 4]
            if len(octal) == 3 and all(c in "01234567" for c in octal):
                out.append(int(octal, 8) & 0xFF)
                i += 4
                continue
            out.append(escapes.get(nxt, ord(nxt)))
            i += 2
            continue
        out.extend(ch.encode())
        i += 1
    return out.decode("utf-8", "replace")


def _strip_prefix(path: str) -> str | None:
    path = _unquote(path.strip())
    if path == "/dev/null":
        return None
    return path[2:] if path[:2] in ("a/", "b/") else path


def _header_paths(line: str) -> tuple[str | None, str | None]:
    """Paths from ``diff --git a/x b/x`` (only reliable when both sides are equal or quoted)."""
    rest = line[len("diff --git ") :]
    if rest.startswith('"'):
        end = rest.find('" ', 1)
        if end > 0:
            return _strip_prefix(rest[: end + 1]), _strip_prefix(rest[end + 2 :])
    half = len(rest) // 2
    if rest[half : half + 1] == " " and rest[:half][2:] == rest[half + 1 :][2:]:
        return _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1 :])
    parts = rest.split(" b/", 1)
    if len(parts) == 2:
        return _strip_prefix(parts[0]), parts[1]
    return None, None


class _FileBuilder:
    def __init__(self, header: str) -> None:
        self.old_path, self.new_path = _header_paths(header)
        self.status: FileStatus = "modified"
        self.binary = False
        self.oversized = False
        self.hunks: list[Hunk] = []
        self.new_text: dict[int, str] = {}
        self.new_blob = ""

    def finish(self) -> FileDiff | None:
        if self.status == "removed":
            path = self.old_path or self.new_path
        else:
            path = self.new_path or self.old_path
        if not path:
            return None
        old = self.old_path if self.old_path != path or self.status == "renamed" else None
        return FileDiff(
            path,
            old,
            self.status,
            tuple(self.hunks),
            self.binary,
            self.new_text,
            oversized=self.oversized,
            new_blob=self.new_blob,
        )


def parse_diff(text: str, *, max_lines: int = MAX_DIFF_LINES) -> tuple[FileDiff, ...]:
    """Parse a ``git diff`` (or forge ``.diff``) into files; unknown lines are ignored.

    Files are parsed in order while their lines fit ``max_lines`` in all; a file that does not
    fit is returned ``oversized``, from its header alone (later, smaller files may still fit).
    """
    files: list[FileDiff] = []
    kept = 0
    for chunk in _file_chunks(text):
        # Counted and cut with str methods (C speed): the lines of a file over the budget are
        # never split into strings, let alone parsed.
        size = chunk.count("\n") + 1
        if kept + size > max_lines:
            body = chunk.find("\n@@ ")
            parsed = _parse_lines((chunk if body < 0 else chunk[:body]).split("\n"))
            for fd in parsed:
                files.append(replace(fd, hunks=(), new_text={}, oversized=True))
            continue
        kept += size
        files.extend(_parse_lines(chunk.split("\n")))
    return tuple(files)


def _file_chunks(text: str) -> Iterator[str]:
    """``text`` cut before each line that starts a file (``diff --git ``)."""
    start = 0
    while True:
        found = text.find("\ndiff --git ", start)
        if found < 0:
            yield text[start:]
            return
        yield text[start : found + 1]
        start = found + 1


def _parse_lines(lines: list[str]) -> list[FileDiff]:
    files: list[FileDiff] = []
    current: _FileBuilder | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            if current is not None and (done := current.finish()) is not None:
                files.append(done)
            current = _FileBuilder(line)
            i += 1
            continue
        if current is None:
            i += 1
            continue
        if line.startswith("new file mode"):
            current.status = "added"
        elif line.startswith("deleted file mode"):
            current.status = "removed"
        elif line.startswith("rename from "):
            current.status = "renamed"
            current.old_path = _unquote(line[len("rename from ") :])
        elif line.startswith("rename to "):
            current.status = "renamed"
            current.new_path = _unquote(line[len("rename to ") :])
        elif line.startswith("index "):
            current.new_blob = line[6:].split(" ")[0].partition("..")[2]
        elif line.startswith("Binary files ") or line.startswith("GIT binary patch"):
            current.binary = True
        elif line.startswith("--- "):
            old = _strip_prefix(line[4:])
            if old is not None:
                current.old_path = old
        elif line.startswith("+++ "):
            new = _strip_prefix(line[4:])
            if new is not None:
                current.new_path = new
        elif line.startswith("@@ "):
            i = _parse_hunk(lines, i, current)
            continue
        i += 1
    if current is not None and (done := current.finish()) is not None:
        files.append(done)
    return files


def _parse_hunk(lines: list[str], i: int, current: _FileBuilder) -> int:
    match = _HUNK_HEADER.match(lines[i])
    if not match:
        return i + 1
    old_no, new_no = int(match.group(1)), int(match.group(3))
    old_len = int(match.group(2)) if match.group(2) is not None else 1
    new_len = int(match.group(4)) if match.group(4) is not None else 1
    old_left, new_left = old_len, new_len
    body: list[DiffLine] = []
    i += 1
    while i < len(lines) and (old_left > 0 or new_left > 0):
        raw = lines[i]
        tag, content = raw[:1], raw[1:]
        if tag == "+":
            body.append(DiffLine("+", None, new_no, content))
            current.new_text[new_no] = content
            new_no += 1
            new_left -= 1
        elif tag == "-":
            body.append(DiffLine("-", old_no, None, content))
            old_no += 1
            old_left -= 1
        elif tag == " " or raw == "":
            body.append(DiffLine(" ", old_no, new_no, content))
            current.new_text[new_no] = content
            old_no += 1
            new_no += 1
            old_left -= 1
            new_left -= 1
        elif tag != "\\":  # "\ No newline at end of file" is not a line of either side
            break
        i += 1
    while i < len(lines) and lines[i].startswith("\\"):
        i += 1
    current.hunks.append(
        Hunk(
            int(match.group(1)),
            old_len,
            int(match.group(3)),
            new_len,
            match.group(5) or "",
            tuple(body),
        )
    )
    return i


def _extra_before(
    hunk: Hunk, new_lines: Sequence[str], *, before: int, max_dynamic: int, floor: int
) -> int:
    """How many unchanged lines to show above a hunk: up to the enclosing definition if near."""
    first = hunk.new_start  # 1-based first new line of the hunk
    leading = [ln for ln in hunk.lines[:3] if ln.kind == " "]
    if any(_is_header(ln.text) for ln in leading):
        return 0  # the enclosing header is already in the hunk's own context
    for back in range(1, max_dynamic + 1):
        n = first - back
        if n <= floor:
            break
        if _is_header(new_lines[n - 1]):
            return back
    return max(0, min(before, first - 1 - floor))


_STATEMENT_WORDS = (
    "return ",
    "if ",
    "else",
    "while ",
    "for ",
    "switch ",
    "case ",
    "throw ",
    "new ",
)


def _is_header(text: str) -> bool:
    if text.lstrip().startswith(_STATEMENT_WORDS):
        return False
    return bool(_DEFINITION.search(text) or _C_SIGNATURE.search(text))


def render_file(
    fd: FileDiff,
    *,
    new_lines: Sequence[str] | None = None,
    extra_before: int = 5,
    extra_after: int = 1,
    max_dynamic: int = 10,
) -> str:
    """The model's view of one file: numbered ``__new hunk__``, unnumbered ``__old hunk__``."""
    if fd.status == "removed":
        return f"## File: '{fd.path}' (deleted)\n"
    if fd.binary:
        return f"## File: '{fd.path}' (binary, not shown)\n"
    title = f"## File: '{fd.path}'"
    if fd.status == "renamed" and fd.old_path:
        title += f" (renamed from '{fd.old_path}')"
    elif fd.status == "added":
        title += " (new file)"
    out = [title]
    use_extra = new_lines is not None and not fd.path.lower().endswith(_NO_EXTRA_CONTEXT)
    shown_until = 0  # last new-side line already shown, so extensions never overlap
    for index, hunk in enumerate(fd.hunks):
        pre: list[tuple[int, str]] = []
        post: list[tuple[int, str]] = []
        if use_extra and new_lines is not None and hunk.new_len > 0:
            count = _extra_before(
                hunk, new_lines, before=extra_before, max_dynamic=max_dynamic, floor=shown_until
            )
            pre = [(n, new_lines[n - 1]) for n in range(hunk.new_start - count, hunk.new_start)]
            last = hunk.new_start + hunk.new_len - 1
            limit = len(new_lines)
            if index + 1 < len(fd.hunks):
                limit = min(limit, fd.hunks[index + 1].new_start - 1)
            post = [
                (n, new_lines[n - 1]) for n in range(last + 1, min(last + extra_after, limit) + 1)
            ]
        new_block = [f"{n}  {text}" for n, text in pre]
        # The old side lists only the removed lines (runs separated by "..."): the unchanged
        # lines around them are already in the numbered new block, so repeating them would
        # only cost tokens.
        old_block: list[str] = []
        previous = " "
        for ln in hunk.lines:
            if ln.kind == "-":
                if previous != "-" and old_block:
                    old_block.append(" ...")
                old_block.append(f"-{ln.text}")
            elif ln.kind == "+":
                new_block.append(f"{ln.new_no} +{ln.text}")
            else:
                new_block.append(f"{ln.new_no}  {ln.text}")
            if ln.kind != "+":
                previous = ln.kind
        new_block += [f"{n}  {text}" for n, text in post]
        has_removed = bool(old_block)
        if pre or post:
            shown_until = post[-1][0] if post else hunk.new_start + hunk.new_len - 1
        else:
            shown_until = hunk.new_start + hunk.new_len - 1
        out.append(f"\n@@ {hunk.section}".rstrip())
        if hunk.new_len > 0:
            out.append("__new hunk__")
            out.extend(new_block)
        if has_removed:
            out.append("__old hunk__")
            out.extend(old_block)
    return "\n".join(out) + "\n"

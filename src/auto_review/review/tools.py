"""Read-only workspace tools for the agentic verifier: ``read_file`` and ``search``.

They run inside the ``analyze`` sandbox (``_analysis`` calls the ``*_task`` functions) on a
hostile checkout with model-chosen arguments. Every open goes through ``read_beneath`` (no
symlinks or magic links at any component, regular files only, byte caps); the walk never follows
a symlinked directory (nor starts in one), skips heavy and VCS directories and stops at
``_MAX_DEPTH`` and ``_MAX_ENTRIES``; patterns are compiled by RE2 (linear time, bounded memory)
and never by Python's backtracking ``re``. Output is capped in bytes and hits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import re2

from auto_review.review._fsconfine import is_real_dir, is_safe_relpath, read_beneath

__all__ = ["list_files_task", "read_file_task", "search_task"]

_MAX_FILE_BYTES = 1024 * 1024
_MAX_OUTPUT_BYTES = 4096
_MAX_HITS = 64
_MAX_DEPTH = 64
_MAX_ENTRIES = 50_000
_MAX_PATTERN = 500
_SKIP_DIRS = frozenset(
    {".git", "node_modules", "vendor", "third_party", "__pycache__", ".venv", "venv", "dist",
     "build", "target", ".next", ".cache"}
)  # fmt: skip


def _clip(text: str, limit: int) -> tuple[str, bool]:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text, False
    return raw[:limit].decode("utf-8", "ignore"), True


def _decode(data: bytes) -> str | None:
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_file_task(payload: dict[str, Any]) -> dict[str, Any]:
    """``{root, path, start_line?, end_line?}`` -> ``{ok, text, truncated}`` or ``{ok, error}``."""
    root, rel = Path(str(payload["root"])), str(payload.get("path") or "").strip()
    rel = rel.removeprefix("./")
    if not is_safe_relpath(rel):
        return {"ok": False, "error": "path must be relative, inside the repository, without .."}
    read = read_beneath(root, rel, max_bytes=_MAX_FILE_BYTES)
    if read is None:
        return {"ok": False, "error": "no such regular file (symlinks are not followed)"}
    if read.truncated:
        return {"ok": False, "error": f"file larger than the {_MAX_FILE_BYTES} byte read cap"}
    text = _decode(read.data)
    if text is None:
        return {"ok": False, "error": "binary or non-UTF-8 file"}
    lines = text.splitlines()
    start, end = payload.get("start_line"), payload.get("end_line")
    first = 1
    if isinstance(start, int) and isinstance(end, int) and 1 <= start <= end:
        first = start
        lines = lines[start - 1 : end]
    numbered = "\n".join(f"{first + i}: {line}" for i, line in enumerate(lines))
    clipped, truncated = _clip(numbered, _MAX_OUTPUT_BYTES)
    return {"ok": True, "text": clipped, "truncated": truncated}


def _walk(root: Path, start: str) -> list[str]:
    """Relative paths of regular files under ``start``, never through a symlink."""
    found: list[str] = []
    seen = 0
    stack: list[tuple[str, int]] = [(start, 0)]
    while stack and seen < _MAX_ENTRIES:
        rel, depth = stack.pop()
        if depth > _MAX_DEPTH:
            continue
        directory = root / rel if rel else root
        try:
            with os.scandir(directory) as entries:
                children = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in children:
            seen += 1
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS:
                    stack.append((child, depth + 1))
            elif entry.is_file(follow_symlinks=False):
                found.append(child)
    found.sort()
    return found


def search_task(payload: dict[str, Any]) -> dict[str, Any]:
    """``{root, pattern, path?}`` -> ``{ok, hits: [{path, line, text}], truncated}``."""
    root = Path(str(payload["root"]))
    pattern = str(payload.get("pattern") or "")
    if not pattern or len(pattern) > _MAX_PATTERN:
        return {"ok": False, "error": f"pattern must be 1 to {_MAX_PATTERN} characters"}
    options = re2.Options()
    options.max_mem = 8 << 20
    options.log_errors = False
    try:
        regex = re2.compile(pattern, options)
    except re2.error:
        return {"ok": False, "error": "invalid pattern (RE2 syntax)"}
    scope = str(payload.get("path") or "").strip().removeprefix("./").rstrip("/")
    if scope and not is_safe_relpath(scope):
        return {"ok": False, "error": "path must be relative, inside the repository, without .."}
    if scope and read_beneath(root, scope, max_bytes=0):
        files = [scope]
    elif not scope or is_real_dir(root, scope):
        # closes F72: the walk checks each child, so the start must be checked here, or a
        # symlinked directory named as the scope is walked wherever it points.
        files = _walk(root, scope)
    else:
        return {"ok": False, "error": "no such file or directory (symlinks are not followed)"}
    hits: list[dict[str, Any]] = []
    for rel in files:
        read = read_beneath(root, rel, max_bytes=_MAX_FILE_BYTES)
        if read is None or read.truncated:
            continue
        text = _decode(read.data)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if regex.search(line):
                hits.append({"path": rel, "line": number, "text": _clip(line, 200)[0]})
                if len(hits) >= _MAX_HITS:
                    return {"ok": True, "hits": hits, "truncated": True}
    return {"ok": True, "hits": hits, "truncated": False}


_MAX_LISTED = 2000


def list_files_task(payload: dict[str, Any]) -> dict[str, Any]:
    """``{root, dirs: [dir]}`` -> ``{files: [path]}``: regular files directly in those dirs."""
    root = Path(str(payload["root"]))
    files: list[str] = []
    for given in [str(d) for d in payload.get("dirs", [])][:200]:
        rel = "" if given in ("", ".") else given
        if rel and not is_real_dir(root, rel):
            continue  # closes F72: a symlinked directory would be listed where it points
        try:
            with os.scandir(root / rel if rel else root) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False) and not entry.is_symlink():
                        files.append(f"{rel}/{entry.name}" if rel else entry.name)
        except OSError:
            continue
        if len(files) >= _MAX_LISTED:
            break
    return {"files": sorted(files)[:_MAX_LISTED]}

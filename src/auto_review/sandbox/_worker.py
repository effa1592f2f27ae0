"""The fresh interpreter's side of ``run_callable``: import the target by name, call it.

Reads the payload from stdin, calls ``module:function(payload) -> bytes``, writes the result to
stdout. While the target runs, fd 1 points at stderr, so a stray print cannot corrupt the result.
Run as ``python -I -B -m auto_review.sandbox._worker_entry TARGET [--path DIR]...``, or in a frozen
build as ``<executable> __auto_review_sandbox_worker__ TARGET ...`` (the entry point checks the
marker before anything else runs).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Final

__all__ = ["WORKER_ARGV_MARKER", "main"]

WORKER_ARGV_MARKER: Final = "__auto_review_sandbox_worker__"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> int:
    """Run one call; exit 0 with the result on stdout, 1 with a traceback on stderr."""
    if not argv or ":" not in argv[0]:
        sys.stderr.write("usage: _worker module:function [--path DIR]...\n")
        return 2
    target, rest = argv[0], argv[1:]
    while len(rest) >= 2 and rest[0] == "--path":
        sys.path.insert(0, rest[1])
        rest = rest[2:]
    payload = sys.stdin.buffer.read()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        module_name, _, func_name = target.partition(":")
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(payload)
        if not isinstance(result, bytes):
            raise TypeError(f"{target} returned {type(result).__name__}, not bytes")
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    sys.stdout.flush()
    _write_all(result_fd, result)
    os.close(result_fd)
    return 0

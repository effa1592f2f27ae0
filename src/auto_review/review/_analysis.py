"""The named analysis tasks a sandboxed child may run; ``entry`` is the child's entry point.

Only tasks in ``_TASKS`` can run: the name is data, not code. Each task takes and returns
JSON-able dicts; the sandbox's ``analyze`` policy has already confined the process.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

__all__ = ["entry", "run_task"]


# Task name -> (module, function). Only the module the task needs is imported: the tree-sitter
# grammars cost ~25 ms to load, which a verifier's read_file or search call has no use for.
_TASKS: dict[str, tuple[str, str]] = {
    "symbols": ("auto_review.review.symbols", "symbols_task"),
    "definitions": ("auto_review.review.symbols", "definitions_task"),
    "read_file": ("auto_review.review.tools", "read_file_task"),
    "search": ("auto_review.review.tools", "search_task"),
    "list_files": ("auto_review.review.tools", "list_files_task"),
}


def run_task(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run the task ``name``; ``KeyError`` for an unknown one."""
    module, function = _TASKS[name]
    task: Callable[[dict[str, Any]], dict[str, Any]] = getattr(
        importlib.import_module(module), function
    )
    return task(payload)


def entry(payload: bytes) -> bytes:
    """The sandboxed side (``sandbox.run_callable`` target): one named task, JSON in and out."""
    request = json.loads(payload)
    return json.dumps(run_task(str(request["task"]), dict(request["payload"]))).encode()

"""The named analysis tasks a sandboxed child may run; ``entry`` is the child's entry point.

Only tasks in ``_tasks()`` can run: the name is data, not code. Each task takes and returns
JSON-able dicts; the sandbox's ``analyze`` policy has already confined the process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["entry", "run_task"]


def _tasks() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    # Imported inside the child only: parsers load native code.
    from auto_review.review.symbols import definitions_task, symbols_task  # noqa: PLC0415
    from auto_review.review.tools import (  # noqa: PLC0415
        list_files_task,
        read_file_task,
        search_task,
    )

    return {
        "symbols": symbols_task,
        "definitions": definitions_task,
        "read_file": read_file_task,
        "search": search_task,
        "list_files": list_files_task,
    }


def run_task(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run the task ``name``; ``KeyError`` for an unknown one."""
    return _tasks()[name](payload)


def entry(payload: bytes) -> bytes:
    """The sandboxed side (``sandbox.run_callable`` target): one named task, JSON in and out."""
    request = json.loads(payload)
    return json.dumps(run_task(str(request["task"]), dict(request["payload"]))).encode()

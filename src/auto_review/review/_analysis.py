"""Entry point of an analysis child (``python -I -m auto_review.review._analysis``).

Reads one JSON request ``{task, payload, memory}`` from stdin, limits itself (address space,
CPU, no file writes, no core dumps) BEFORE touching the payload, runs the named task and writes
its JSON answer to stdout. Only tasks in ``_TASKS`` can run: the name is data, not code.
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["main"]

_MAX_REQUEST = 8 * 1024 * 1024
_CPU_SECONDS = 120


def _limit(memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (_CPU_SECONDS, _CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _tasks() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    # Imported after the limits are in place: parsers load native code.
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


def main() -> int:
    raw = sys.stdin.buffer.read(_MAX_REQUEST + 1)
    if len(raw) > _MAX_REQUEST:
        sys.stderr.write("request too large\n")
        return 2
    request = json.loads(raw)
    _limit(int(request.get("memory", 1 << 30)))
    task = _tasks().get(str(request.get("task")))
    if task is None:
        sys.stderr.write("unknown task\n")
        return 2
    answer = task(dict(request.get("payload") or {}))
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())

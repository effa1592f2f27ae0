"""The review pipeline's two sandbox boundaries, each ONE call site.

- ``run_git``: every git process (policy ``clone``: network to the forge only, writes only the
  workspace, file-size and time limits).
- ``run_analysis``: every parse or search of repository files (policy ``analyze``: no network,
  read-only workspace, memory/CPU/time limits). The task runs in a child interpreter
  (``python -I -m auto_review.review._analysis``) that sets its own rlimits before reading its
  input; tasks and results cross as JSON, never pickle, so a subverted child cannot run code in
  the parent.

Until ``auto_review.sandbox`` offers ``run_command``/``run_callable`` these use plain child
processes with rlimits, an empty environment, a new process group killed whole at the deadline;
switching is a change here only.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auto_review.errors import ReviewError

__all__ = ["AnalysisFailed", "CommandResult", "run_analysis", "run_git"]

_MAX_CAPTURE = 4 * 1024 * 1024  # stdout/stderr kept from one git command
_ANALYSIS_MEMORY = 1024 * 1024 * 1024
_ANALYSIS_OUTPUT = 16 * 1024 * 1024


class AnalysisFailed(ReviewError):
    """An analysis task crashed, timed out or returned something unreadable."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


def _limit_file_size(max_file_bytes: int) -> None:
    # Runs in the forked child before exec: one oversized file (a 2 GiB blob) kills git with
    # SIGXFSZ instead of filling the disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    max_file_bytes: int,
) -> CommandResult:
    """Run ``git ARGS`` with exactly ``env``; the whole process group dies at ``timeout``."""
    proc = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        preexec_fn=lambda: _limit_file_size(max_file_bytes),  # noqa: PLW1509 (see above)
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return CommandResult(-9, out[:_MAX_CAPTURE], err[-_MAX_CAPTURE:], timed_out=True)
    return CommandResult(proc.returncode, out[:_MAX_CAPTURE], err[-_MAX_CAPTURE:])


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_analysis(
    task: str, payload: Mapping[str, Any], *, timeout: float, memory_bytes: int = _ANALYSIS_MEMORY
) -> dict[str, Any]:
    """Run the named analysis task on ``payload`` in a confined child; its JSON answer."""
    request = json.dumps({"task": task, "payload": payload, "memory": memory_bytes}).encode()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-m", "auto_review.review._analysis"],
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )
    try:
        out, err = proc.communicate(request, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise AnalysisFailed(f"analysis task {task} timed out after {timeout:.0f}s") from None
    if proc.returncode != 0 or len(out) > _ANALYSIS_OUTPUT:
        tail = err[-300:].decode("utf-8", "replace").strip().splitlines()
        reason = tail[-1] if tail else f"exit status {proc.returncode}"
        raise AnalysisFailed(f"analysis task {task} failed: {reason}")
    try:
        answer = json.loads(out)
    except ValueError as exc:
        raise AnalysisFailed(f"analysis task {task} returned unreadable output") from exc
    if not isinstance(answer, dict):
        raise AnalysisFailed(f"analysis task {task} returned a {type(answer).__name__}")
    return answer

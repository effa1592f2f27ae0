"""The parent's side of a running sandbox: feed stdin, drain output, read reports, backstop.

Invariant: ``communicate`` returns only after the outer child has been reaped and every fd it
was handed is closed; if the supervisor's own deadline never fires, the backstop SIGKILLs the
outer child, whose death kills the supervisor (PR_SET_PDEATHSIG) and with it the pid namespace.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auto_review.sandbox.errors import (
    KernelFeatureMissing,
    SandboxError,
    SandboxLimitExceeded,
    SandboxPolicyInvalid,
    SandboxPolicyViolation,
    SandboxSetupError,
    SandboxTimeout,
)

__all__ = ["STOP_SIGNAL", "Outcome", "PostureHook", "communicate"]

STOP_SIGNAL = signal.SIGUSR1  # asks the supervisor to kill the job tree and report
_CHUNK = 65536


@dataclass
class Outcome:
    """What the sandbox reported, plus captured output."""

    status: int | None = None
    timed_out: bool = False
    output_exceeded: bool = False
    limit: dict[str, Any] | None = None  # the supervisor stopped the job at a limit (disk)
    error: dict[str, Any] | None = None
    posture: dict[str, Any] = field(default_factory=dict)
    stdout: bytes = b""
    stderr: bytes = b""

    def exit_status(self, *, oom: bool = False, subject: str = "the job") -> int:
        """The job's exit status (-N for signal N), or raise the typed error for how it ended
        (``oom``: its cgroup saw an OOM kill; ``subject``: what ran, as a refusal names it)."""
        if oom:
            raise SandboxLimitExceeded(
                "the job was killed at its cgroup memory limit", limit="memory"
            )
        if self.error is not None:
            raise self.as_error(subject)
        if self.output_exceeded:
            raise SandboxLimitExceeded("the job's output passed max_output_bytes", limit="output")
        if self.limit is not None:
            limit = str(self.limit.get("limit"))
            raise SandboxLimitExceeded(
                f"the job hit its {limit} cap and its process tree was killed: "
                f"{self.limit.get('message')}",
                limit=limit,
            )
        if self.timed_out:
            raise SandboxTimeout(
                "the job passed its wall-clock deadline; its process tree was killed"
            )
        if self.status is None:
            raise SandboxSetupError(
                "the sandbox ended without reporting the job's status", step="supervisor"
            )
        if not os.WIFSIGNALED(self.status):
            return os.WEXITSTATUS(self.status)
        sig = os.WTERMSIG(self.status)
        if sig == signal.SIGSYS:
            raise SandboxPolicyViolation("the job was killed by seccomp (SIGSYS)")
        if sig == signal.SIGXCPU:
            raise SandboxLimitExceeded("the job used up its CPU time (SIGXCPU)", limit="cpu")
        if sig == signal.SIGXFSZ:
            raise SandboxLimitExceeded(
                "the job hit its file-size limit (SIGXFSZ)", limit="file_size"
            )
        return -sig

    def as_error(self, subject: str = "the job") -> SandboxError:
        """The typed error for a reported failure (``subject``: what the sandbox ran)."""
        err = self.error or {}
        message = str(err.get("message", "sandbox setup failed"))
        if err.get("kind") == "feature":
            return KernelFeatureMissing(
                str(err.get("feature")), str(err.get("fix")), detail=str(err.get("detail", ""))
            )
        if err.get("kind") == "policy":  # e.g. a job path became a symlink after the check
            return SandboxPolicyInvalid(
                f"sandbox refused {subject} at {err.get('step')}: {message}"
            )
        if err.get("kind") == "posture":
            return SandboxPolicyViolation(f"enforced posture disagrees with the policy: {message}")
        setup = SandboxSetupError(
            f"sandbox setup failed at {err.get('step')}: {message}",
            step=str(err.get("step")),
            path=err.get("path"),
            errno=err.get("errno"),
        )
        if err.get("step") == "execve":  # the shell's convention: 127 not found, 126 not runnable
            setup.exit_code = 127 if err.get("errno") == errno.ENOENT else 126
        return setup


PostureHook = Callable[[dict[str, Any]], None]


def _handle_report(outcome: Outcome, line: bytes, on_posture: PostureHook | None) -> None:
    try:
        message = json.loads(line)
    except ValueError:
        return
    event = message.get("event")
    if event == "error" and outcome.error is None:
        outcome.error = message
    elif event == "posture":
        outcome.posture.update(message)
        if on_posture is not None:
            on_posture(dict(outcome.posture))
    elif event == "exit":
        outcome.status = message.get("status")
    elif event == "pid_cap":
        outcome.posture["pid_cap"] = message.get("value")
    elif event == "disk_cap":
        outcome.posture["disk_cap"] = {k: v for k, v in message.items() if k != "event"}
    elif event == "limit":
        outcome.limit = message
    elif event == "timeout":
        outcome.timed_out = True


def communicate(
    pid: int,
    report_fd: int,
    *,
    stdin_w: int | None = None,
    stdin_data: bytes = b"",
    out_r: int | None = None,
    err_r: int | None = None,
    backstop: float | None,
    max_output: int | None = None,
    on_posture: PostureHook | None = None,
) -> Outcome:
    """Run the parent's I/O loop for the outer child ``pid`` until everything is closed."""
    outcome = Outcome()
    sel = selectors.DefaultSelector()
    buffers = {out_r: bytearray(), err_r: bytearray()}
    report_buf = b""
    view = memoryview(stdin_data)
    sel.register(report_fd, selectors.EVENT_READ)
    for fd in (out_r, err_r):
        if fd is not None:
            sel.register(fd, selectors.EVENT_READ)
    if stdin_w is not None:
        if stdin_data:
            os.set_blocking(stdin_w, False)
            sel.register(stdin_w, selectors.EVENT_WRITE)
        else:
            os.close(stdin_w)
    deadline = None if backstop is None else time.monotonic() + backstop
    stopping = False
    try:
        while sel.get_map():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                outcome.timed_out = True
                break
            for key, _mask in sel.select(remaining):
                fd = int(key.fd)
                if fd == stdin_w:
                    try:
                        view = view[os.write(fd, view[:_CHUNK]) :]
                    except BrokenPipeError:
                        view = view[:0]
                    if not view:
                        sel.unregister(fd)
                        os.close(fd)
                    continue
                data = os.read(fd, _CHUNK)
                if not data:
                    sel.unregister(fd)
                    os.close(fd)
                    continue
                if fd == report_fd:
                    report_buf += data
                    *lines, report_buf = report_buf.split(b"\n")
                    for line in lines:
                        _handle_report(outcome, line, on_posture)
                    continue
                if stopping:
                    continue
                buffers[fd] += data
                total = len(buffers[out_r]) + len(buffers[err_r])
                if max_output is not None and total > max_output:
                    outcome.output_exceeded = stopping = True
                    os.kill(pid, STOP_SIGNAL)
    finally:
        for key in list(sel.get_map().values()):
            os.close(int(key.fd))
        sel.close()
        os.waitpid(pid, 0)
    outcome.stdout = bytes(buffers[out_r])
    outcome.stderr = bytes(buffers[err_r])
    return outcome

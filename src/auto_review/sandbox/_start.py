"""Starting a sandbox: the caller forks the outer child, which runs the plan and never returns.

The fork skips CPython's after-fork hooks when the caller has one thread (docs/adr/0008: they
cost ~0.45 ms of page faults and the outer child needs none of them); a multithreaded caller
(the job server, a bare gateway's workers) keeps ``os.fork()``, whose hooks it needs.
"""

from __future__ import annotations

import os
import signal

from auto_review.sandbox import kernel
from auto_review.sandbox._child import EXIT_SETUP_FAILED, Plan, run_outer

__all__ = ["start_outer"]


def _fork_outer() -> int:
    if len(os.listdir("/proc/self/task")) > 1:
        return os.fork()
    # Blocking every signal first runs the Python handlers of signals that already arrived
    # (pthread_sigmask checks for them), here; none can arrive in the child before it resets
    # its dispositions and mask, so no handler of the caller's is left to run there.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    pid = -1
    try:
        pid = kernel.fork_single_threaded()
    finally:
        if pid != 0:  # the caller, also when fork failed; the child unblocks in run_outer
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def start_outer(plan: Plan) -> tuple[int, int]:
    """Fork the outer child running ``plan``; return its pid and the read end of its reports."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = _fork_outer()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            os.close(read_fd)
            run_outer(plan, write_fd)
        finally:
            os._exit(EXIT_SETUP_FAILED)
    os.close(write_fd)
    return pid, read_fd

"""Reaping for the supervisor: kill every descendant of the calling process, then reap it.

Once ``kill_descendants`` returns in pid 1 of a pid namespace or in a child subreaper, no
process below the caller is left: orphans are reparented to the caller, so killing children
until none remains reaches daemons that setsid or double-forked away from the job.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["kill_descendants"]


def _children() -> list[int]:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children", encoding="ascii") as fh:
            return [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        pass  # a kernel without CONFIG_PROC_CHILDREN: scan every process's parent instead
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == me:
                kids.append(int(entry))
    return kids


def _has_children() -> bool:
    # Every descendant of ours has an ancestor that is our child (orphans are reparented to
    # us), so no child means no descendant. Reaping one exited child here is harmless.
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def kill_descendants() -> None:
    """As child subreaper: kill children until none is left (orphans come back to us)."""
    if not _has_children():  # the usual case: one syscall instead of reading /proc
        return
    for _ in range(100000):
        kids = _children()
        if not kids:
            break
        for kid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, signal.SIGKILL)
        for kid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(kid, 0)

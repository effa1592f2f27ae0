"""Reaping for the supervisor: find or kill every descendant of the calling process.

Once ``kill_descendants`` returns in pid 1 of a pid namespace or in a child subreaper, no
process below the caller is left: orphans are reparented to the caller, so killing children
until none remains reaches daemons that setsid or double-forked away from the job.
``descendants`` is a snapshot of the tree below the caller, for the disk cap's freeze.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["descendants", "kill_descendants"]


def _scan_parents() -> dict[int, list[int]]:
    """Children by parent, from every process's stat (a kernel without CONFIG_PROC_CHILDREN)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def _children_of(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (none once it is gone)."""
    kids: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(FileNotFoundError),
                open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh,
            ):
                kids.extend(int(p) for p in fh.read().split())
    return kids


def _children() -> list[int]:
    me = os.getpid()
    if os.path.exists("/proc/thread-self/children"):
        return _children_of(me)
    return _scan_parents().get(me, [])


def descendants() -> list[int]:
    """Every process below the caller, parents before their children (a snapshot)."""
    tree = None if os.path.exists("/proc/thread-self/children") else _scan_parents()
    found: list[int] = []
    queue = [os.getpid()]
    while queue:
        pid = queue.pop(0)
        for kid in _children_of(pid) if tree is None else tree.get(pid, []):
            if kid not in found:  # a pid reused mid-walk must not loop
                found.append(kid)
                queue.append(kid)
    return found


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

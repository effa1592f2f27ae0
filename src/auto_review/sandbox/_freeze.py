"""Freezing the job's tree while the disk cap counts what it holds: SIGSTOP, checked, SIGCONT.

closes: a job renaming, unlinking or writing files while the supervisor walks them, so that
the count misses them (there is no freezer cgroup without a delegated subtree).

Once ``freeze`` returns a ``Frozen``, every descendant of the caller and every thread of each
was seen stopped (or dead) in two passes alike. A stopped process stays stopped unless a running
one sends it SIGCONT; sequential reads cannot rule out such a relay, so ``unchanged`` reads
every thread again after the count: a new process, a running thread or a moved context-switch
count means something ran in between, and the caller must not trust the count.

Out of scope: hiding the stop from the job. Its processes see SIGCHLD with CLD_STOPPED and
CLD_CONTINUED, and a few blocking calls (epoll_wait, semop, ...) return EINTR on resumption
(signal(7)). A process the job had stopped itself is resumed by ``thaw`` too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from auto_review.sandbox._reap import descendants

__all__ = ["FREEZE_MAX_SECONDS", "Frozen", "freeze", "thaw", "unchanged"]

# A process stops when it next returns to user space; a write(2) in progress finishes first
# (a 1 GiB write, the `run` file-size cap, takes ~0.25 s into the page cache here).
FREEZE_MAX_SECONDS: Final = 1.0
_STOPPED: Final = frozenset("tTZX")  # stopped, traced-stopped, zombie, dead: none can run
_DEAD: Final = frozenset("ZX")


@dataclass(frozen=True)
class Frozen:
    """The stopped tree: its processes, those with a live thread (a zombie holds no file and
    its /proc entries may be closed to us), and each (pid, tid)'s context switches."""

    pids: tuple[int, ...]
    live: tuple[int, ...]
    switches: dict[tuple[int, int], int]


def _threads(pids: list[int]) -> dict[tuple[int, int], tuple[str, int]] | None:
    """Each (pid, tid)'s (state letter, context switches); None if a process or thread
    vanished mid-read (killed, or exited before it stopped)."""
    seen: dict[tuple[int, int], tuple[str, int]] = {}
    try:
        for pid in pids:
            for tid in os.listdir(f"/proc/{pid}/task"):
                fields: dict[str, str] = {}
                with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii") as fh:
                    for line in fh:
                        key, _, value = line.partition(":")
                        fields[key] = value
                switches = int(fields["voluntary_ctxt_switches"])
                switches += int(fields["nonvoluntary_ctxt_switches"])
                seen[pid, int(tid)] = (fields["State"].split()[0], switches)
    except (FileNotFoundError, KeyError):  # KeyError: a kernel without the switch counts
        return None
    return seen


def freeze(keep_waiting: Callable[[], bool]) -> Frozen | None:
    """Stop every descendant and wait until all are seen stopped, twice alike; None once that
    took longer than FREEZE_MAX_SECONDS or ``keep_waiting`` says no (the caller kills the
    tree, which aborts a write(2) that SIGSTOP would have let finish)."""
    deadline = time.monotonic() + FREEZE_MAX_SECONDS
    previous: dict[tuple[int, int], tuple[str, int]] | None = None
    while True:
        pids = descendants()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        threads = _threads(pids)
        # Twice alike, a millisecond apart: a thread reads "T" a moment before it is switched
        # out, which counts one more context switch; that would look like a relay later.
        if (
            threads is not None
            and all(state in _STOPPED for state, _ in threads.values())
            and threads == previous
            and descendants() == pids
        ):
            live = {pid for (pid, _tid), (state, _n) in threads.items() if state not in _DEAD}
            switches = {key: count for key, (_state, count) in threads.items()}
            return Frozen(tuple(pids), tuple(p for p in pids if p in live), switches)
        if time.monotonic() > deadline or not keep_waiting():
            return None
        previous = threads
        time.sleep(0.001)


def unchanged(frozen: Frozen) -> bool:
    """True if no process of the frozen tree ran since ``freeze`` and none was added."""
    if tuple(descendants()) != frozen.pids:
        return False
    threads = _threads(list(frozen.pids))
    if threads is None or threads.keys() != frozen.switches.keys():
        return False
    return all(
        state in _STOPPED and frozen.switches[key] == count
        for key, (state, count) in threads.items()
    )


def thaw(frozen: Frozen) -> None:
    """Resume every process of the frozen tree."""
    for pid in frozen.pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

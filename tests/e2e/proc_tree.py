"""Read a sandboxed gateway's process tree from the host, through /proc.

``launch`` (src/auto_review/sandbox/launcher.py) makes: launcher -> job server, and launcher ->
outer child -> supervisor -> inner gateway; the job server makes outer child -> supervisor ->
job for each job sandbox. ``JobSampler`` records, while a review runs, what the job processes
are, as the host sees them.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["JobSampler", "children", "cmdline", "inner_gateway", "job_server", "status"]


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (empty when it is gone)."""
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []  # it exited while we looked (a job's supervisor, between two samples)
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict of its fields."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def cmdline(pid: int) -> list[str]:
    """/proc/<pid>/cmdline split into its arguments."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.decode(errors="replace").split("\0")[:-1]


def job_server(launcher: int) -> int:
    """The launcher's job server child (a fresh interpreter running ``_jobserver:serve``)."""
    [server] = [p for p in children(launcher) if any("_jobserver" in a for a in cmdline(p))]
    return server


def inner_gateway(launcher: int) -> int:
    """The confined gateway: the one grandchild of the launcher's outer child."""
    [outer] = [p for p in children(launcher) if p != job_server(launcher)]
    [supervisor] = children(outer)
    [inner] = children(supervisor)
    return inner


@dataclass
class JobSampler:
    """Polls the job server's descendants every few ms; keeps each job process's status and
    namespace ids (a job: the process a supervisor runs, three levels below the server)."""

    server: int
    seen: dict[int, tuple[dict[str, str], dict[str, str], list[str]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> JobSampler:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.is_set():
            for outer in children(self.server):
                for supervisor in children(outer):
                    for job in children(supervisor):
                        try:
                            fields = status(job)
                            ns = {n: os.readlink(f"/proc/{job}/ns/{n}") for n in ("pid", "mnt")}
                            argv = cmdline(job)
                        except OSError:
                            continue  # gone already
                        # Seccomp 2: past its setup (seccomp is its last step), so confined,
                        # not read back mid-way. Seen again after its execve (or before its
                        # exit, with no cmdline), the record is refreshed with what it runs.
                        if fields.get("Seccomp") == "2" and (argv or job not in self.seen):
                            self.seen[job] = (fields, ns, argv)
            time.sleep(0.005)

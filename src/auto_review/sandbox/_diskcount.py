"""Counting what a frozen job holds on its watched filesystems: the disk cap's second stage.

Counted, each inode once, at st_blocks * 512:
- every entry under a watched place, walked with openat from the place's O_PATH fd; no
  symlink is followed, and an entry on another filesystem (a mount below the place) is
  neither counted nor entered: its growth is not in the fstatvfs figures being confirmed;
- every regular file on a watched filesystem that a job process holds open (each thread's fd
  table), and every unlinked file a job process maps: a walk cannot see them;
and of those only inodes the job changed: ctime at or after the job's start (less a second
for the kernel's coarse clock; a job cannot set ctime), or unlinked. A pre-existing file the
job changed counts whole, so the count errs high: the cap fails closed.

``count`` says "unconfirmed" (the caller kills as if it had not counted) when it cannot see
everything: an unreadable directory (EACCES, ELOOP), /proc entries of a job process closed
to us (a non-dumpable job in the restricted tier), a mapped unlinked file it cannot stat
(map_files needs CAP_SYS_ADMIN), a unix socket with something queued (a file sent with
SCM_RIGHTS and closed lives on only in the queue), more than MAX_ENTRIES entries, MAX_SECONDS
or MAX_DEPTH directories deep, or a wall clock that went back since the job started.

Out of scope: a file kept alive only by an unreachable cycle of unix sockets, seen by nobody
until the kernel's unix garbage collector frees it (at the next release of a unix socket).
"""

from __future__ import annotations

import os
import select
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from auto_review.sandbox import kernel
from auto_review.sandbox.errors import SandboxSyscallError

__all__ = ["MAX_DEPTH", "MAX_ENTRIES", "MAX_SECONDS", "Count", "JobStart", "count", "job_start"]

MAX_ENTRIES: Final = 1_000_000  # ~4 s of walking here; a clone is tens of thousands
MAX_SECONDS: Final = 5.0
MAX_DEPTH: Final = 256  # directories open at once during the walk
_CTIME_SLACK_NS: Final = 1_000_000_000  # ctime comes from a clock that lags by up to a tick
_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Unconfirmed(Exception):
    pass


@dataclass(frozen=True)
class JobStart:
    """When the job started, on both clocks, and the device of the kernel's internal shmem
    (memfd, SysV and shared anonymous maps live there, not on a watched filesystem)."""

    real_ns: int
    monotonic_ns: int
    shmem_dev: int


@dataclass(frozen=True)
class Count:
    """What the job holds (bytes), or why that could not be told (``unconfirmed`` not "")."""

    bytes: int
    unconfirmed: str = ""


def job_start() -> JobStart:
    """Take the start marks (before the job is forked)."""
    probe = os.memfd_create("auto-review-shmem-dev", os.MFD_CLOEXEC)
    try:
        shmem_dev = os.fstat(probe).st_dev
    finally:
        os.close(probe)
    return JobStart(time.time_ns(), time.monotonic_ns(), shmem_dev)


class _Tally:
    def __init__(self, cutoff_ns: int) -> None:
        self.cutoff_ns = cutoff_ns
        self.deadline = time.monotonic() + MAX_SECONDS
        self.total = 0
        self.entries = 0
        self.seen: set[tuple[int, int]] = set()
        self.unix: frozenset[int] | None = None  # read once, when a socket is met

    def add(self, st: os.stat_result, *, keep: bool = False) -> bool:
        """Count ``st`` if the job changed it; False if it was seen before. Only directories,
        multiply linked and ``keep`` inodes are remembered: one name cannot be walked twice."""
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise _Unconfirmed(f"more than {MAX_ENTRIES} entries")
        if self.entries % 1024 == 0 and time.monotonic() > self.deadline:
            raise _Unconfirmed(f"counting took more than {MAX_SECONDS:g} s")
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return False
        if keep or st.st_nlink != 1 or stat.S_ISDIR(st.st_mode):
            self.seen.add(key)
        if st.st_ctime_ns >= self.cutoff_ns or st.st_nlink == 0:
            self.total += st.st_blocks * 512
        return True


def _scan(fd: int, dev: int, tally: _Tally) -> list[str]:
    """Count the entries of one directory; the names of its subdirectories to enter."""
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if st.st_dev == dev and tally.add(st) and stat.S_ISDIR(st.st_mode):
                subdirs.append(entry.name)
    return subdirs


def _walk(place: int, tally: _Tally) -> None:
    """Count the tree below ``place`` depth-first, holding one fd per level."""
    top = os.fstat(place)
    if not tally.add(top) or not stat.S_ISDIR(top.st_mode):
        return
    frames: list[tuple[int, list[str]]] = []
    try:
        _enter(frames, os.open(".", _DIR, dir_fd=place), top.st_dev, tally)
        while frames:
            fd, pending = frames[-1]
            if not pending:
                os.close(frames.pop()[0])
            elif len(frames) >= MAX_DEPTH:
                raise _Unconfirmed(f"directories nested more than {MAX_DEPTH} deep")
            else:
                _enter(frames, os.open(pending.pop(), _DIR, dir_fd=fd), top.st_dev, tally)
    finally:
        for fd, _ in frames:
            os.close(fd)


def _enter(frames: list[tuple[int, list[str]]], fd: int, dev: int, tally: _Tally) -> None:
    pending: list[str] = []
    frames.append((fd, pending))  # first, so that the walk closes it whatever happens
    pending.extend(_scan(fd, dev, tally))


def _unix_inodes() -> frozenset[int]:
    """The inodes of the unix sockets of our network namespace (the job's)."""
    with open("/proc/net/unix", encoding="ascii", errors="replace") as fh:
        next(fh)  # the header
        return frozenset(int(line.split()[6]) for line in fh if len(line.split()) > 6)


def _queue_is_empty(pidfd: int, fd: int) -> bool:
    """False if the unix socket ``fd`` of the process has anything queued to read."""
    # A raw fd, no socket object: that could change the flags it shares with the job's.
    copy = kernel.pidfd_getfd(pidfd, fd)
    try:
        poller = select.poll()
        poller.register(copy, select.POLLIN)
        return not poller.poll(0)
    finally:
        os.close(copy)


def _open_files(pid: int, devices: frozenset[int], tally: _Tally) -> None:
    """Count the files the process's threads hold open; check its unix sockets' queues."""
    tids = sorted(os.listdir(f"/proc/{pid}/task"), key=lambda tid: tid != str(pid))
    pidfd = os.pidfd_open(pid)
    try:
        for tid in tids:
            fd_dir = f"/proc/{pid}/task/{tid}/fd"
            for name in os.listdir(fd_dir):
                st = os.stat(f"{fd_dir}/{name}")  # the open file itself (a magic link)
                if stat.S_ISREG(st.st_mode) and st.st_dev in devices:
                    tally.add(st, keep=True)
                elif stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) not in tally.seen:
                    tally.unix = _unix_inodes() if tally.unix is None else tally.unix
                    if st.st_ino not in tally.unix:
                        continue  # only unix sockets carry files (SCM_RIGHTS)
                    if tid != str(pid):  # pidfd_getfd reads the leader's fd table only
                        raise _Unconfirmed(f"thread {tid} holds a socket in its own fd table")
                    if not _queue_is_empty(pidfd, int(name)):
                        raise _Unconfirmed(f"process {pid} has a unix socket with data queued")
                    tally.seen.add((st.st_dev, st.st_ino))
    finally:
        os.close(pidfd)


def _mapped_files(pid: int, devices: frozenset[int], shmem_dev: int, tally: _Tally) -> None:
    """Count the unlinked files the process maps (the rest are in the walk or not ours)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or not fields[5].rstrip("\n").endswith(" (deleted)"):
                continue
            major, minor = (int(part, 16) for part in fields[3].split(":"))
            key = (os.makedev(major, minor), int(fields[4]))
            if key[0] == shmem_dev or key in tally.seen:
                continue
            try:
                st = os.stat(f"/proc/{pid}/map_files/{fields[0]}")
            except PermissionError:
                raise _Unconfirmed(f"process {pid} maps an unlinked file we cannot stat") from None
            if st.st_dev in devices:  # elsewhere (the private /tmp) it grows no watched place
                tally.add(st, keep=True)
            tally.seen.add(key)


def count(
    places: Sequence[int], devices: frozenset[int], start: JobStart, pids: Sequence[int]
) -> Count:
    """What the frozen job ``pids`` holds under ``places`` (O_PATH fds) and in open or mapped
    files on ``devices``, counting only what changed since ``start``."""
    real = time.time_ns() - start.real_ns
    if real < time.monotonic_ns() - start.monotonic_ns - _CTIME_SLACK_NS:
        return Count(0, "the wall clock went back since the job started")
    tally = _Tally(start.real_ns - _CTIME_SLACK_NS)
    try:
        for pid in pids:
            _open_files(pid, devices, tally)
            _mapped_files(pid, devices, start.shmem_dev, tally)
        for place in places:
            _walk(place, tally)
    except _Unconfirmed as exc:
        return Count(0, str(exc))
    except (OSError, SandboxSyscallError) as exc:
        return Count(0, f"{type(exc).__name__}: {exc}")
    return Count(tally.total)

"""The disk cap: the supervisor stops a job whose writable places grew past ``disk_bytes``.

closes: a job filling the host disk with many files, each below RLIMIT_FSIZE (F12), e.g. a
hostile repository in a clone job filling the gateway's state filesystem.

Runs in the supervisor (pid 1 of the job's namespaces, or its subreaper outside the full
tier), which already owns the deadline. ``open_watch`` runs before the job is forked: it opens
each writable place (O_PATH, last component not followed) and keeps one fd per filesystem, with
that filesystem's free blocks and inodes at the start. ``DiskWatcher.wait`` then reaps children
until the job exits, re-reading ``fstatvfs`` on a timer that shrinks as the growth nears the
cap, and raises ``DiskCapExceeded`` (the supervisor kills the whole tree) when either holds:

- cap: the used blocks of those filesystems grew, summed, by more than ``cap_bytes``;
- floor: a filesystem that grew has less free space (or fewer free inodes) than its floor,
  min(1 GiB, 2 % of its size) (min(100k, 2 %) inodes): whatever the cap, the host keeps room.

Invariants: one fstatvfs per filesystem per poll (~0.5 us), no walk of the trees, nothing on
the path of a job that exits before its first poll but one pidfd and the baseline reads.
Attribution is by filesystem: every writer there counts, so a busy neighbour can stop a job
early; nothing lets a job add more than the cap plus the overshoot to a filesystem's net use.
Overshoot: the job's write rate times the poll interval near the cap (``MIN_POLL_SECONDS``),
plus the supervisor's wake-up and kill latency, as long as the job writes slower than
``ASSUMED_MAX_RATE`` (page-cache writes measured ~4.5 GiB/s per core here); fallocate, which
allocates at ~500 GiB/s, is refused by seccomp (EOPNOTSUPP: glibc then writes). Exact where
the filesystem reserves delayed allocations at write time (ext4, xfs, tmpfs); approximate on
btrfs and network filesystems.

Out of scope: per-job attribution on a shared filesystem (that needs project quotas), files
already on disk before the job started (only growth counts), the private /tmp (its tmpfs has
its own size), and removing what the stopped job wrote (the caller owns its directories).
"""

from __future__ import annotations

import os
import select
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ASSUMED_MAX_RATE",
    "MIN_POLL_SECONDS",
    "DiskCapExceeded",
    "DiskWatch",
    "DiskWatcher",
    "open_watch",
]

_MIB: Final = 1024 * 1024
MIN_POLL_SECONDS: Final = 0.002  # near the cap: the overshoot is the write rate times this
_MAX_POLL_SECONDS: Final = 0.1  # far from the cap: ten wake-ups a second
# Far from the cap the next poll comes when a writer at this rate could have reached it:
# well above what a job on two cores writes into the page cache (~4.5 GiB/s each, measured).
ASSUMED_MAX_RATE: Final = 16 * 1024 * _MIB
_FLOOR_MAX_BYTES: Final = 1024 * _MIB
_FLOOR_MAX_INODES: Final = 100_000
_FLOOR_FRACTION: Final = 50  # the floor is at most 1/50 (2 %) of the filesystem


class DiskCapExceeded(Exception):
    """The job's writable places passed the cap or a floor (raised in the supervisor only)."""


@dataclass(frozen=True)
class DiskWatch:
    """What the supervisor watches (pure data in the Plan): writable places and the cap."""

    paths: tuple[str, ...]
    cap_bytes: int


@dataclass
class _Filesystem:
    fd: int
    path: str
    frsize: int
    free_blocks: int  # f_bfree at the start
    free_inodes: int  # f_ffree at the start
    floor_bytes: int
    floor_inodes: int


class DiskWatcher:
    """The open watch of one job: its filesystems and their baselines."""

    def __init__(self, cap_bytes: int, filesystems: list[_Filesystem]) -> None:
        self.cap_bytes = cap_bytes
        self.filesystems = filesystems
        self.headroom = cap_bytes

    def describe(self) -> dict[str, Any]:
        """What is enforced, for the posture (JSON-ready)."""
        return {
            "cap_bytes": self.cap_bytes,
            "filesystems": len(self.filesystems),
            "floors": [
                {"path": fs.path, "bytes": fs.floor_bytes, "inodes": fs.floor_inodes}
                for fs in self.filesystems
            ],
            "poll_seconds": [MIN_POLL_SECONDS, _MAX_POLL_SECONDS],
        }

    def check(self) -> None:
        """Raise DiskCapExceeded if the growth passed the cap or a filesystem its floor."""
        grown, headroom = 0, self.cap_bytes
        for fs in self.filesystems:
            now = os.fstatvfs(fs.fd)
            delta = (fs.free_blocks - now.f_bfree) * fs.frsize
            grown += max(delta, 0)
            available = now.f_bavail * fs.frsize
            if delta > 0 and available < fs.floor_bytes:
                raise DiskCapExceeded(
                    f"the filesystem of {fs.path} has {available // _MIB} MiB free, below its "
                    f"floor of {fs.floor_bytes // _MIB} MiB, and the job's writes grew it"
                )
            if fs.floor_inodes and fs.free_inodes > now.f_ffree and now.f_favail < fs.floor_inodes:
                raise DiskCapExceeded(
                    f"the filesystem of {fs.path} has {now.f_favail} free inodes, below its "
                    f"floor of {fs.floor_inodes}, and the job created files"
                )
            headroom = min(headroom, available - fs.floor_bytes)
        if grown > self.cap_bytes:
            raise DiskCapExceeded(
                f"the job's writable places grew by {grown / _MIB:.1f} MiB, past its disk cap of "
                f"{self.cap_bytes // _MIB} MiB (measured per filesystem: every writer there counts)"
            )
        self.headroom = min(headroom, self.cap_bytes - grown)

    def interval(self) -> float:
        """Seconds until the next poll: the time a writer at ASSUMED_MAX_RATE needs to use up
        the headroom, between MIN_POLL_SECONDS and a tenth of a second."""
        return min(max(self.headroom / ASSUMED_MAX_RATE, MIN_POLL_SECONDS), _MAX_POLL_SECONDS)

    def wait(self, pid: int) -> int | None:
        """Reap children until the job ``pid`` exits, polling the disk meanwhile; return its
        wait status (None if it vanished unreaped). Raises DiskCapExceeded, the job may then
        still run: the caller kills the tree. Signal handlers' exceptions pass through."""
        pidfd = os.pidfd_open(pid)
        try:
            while True:
                status, gone = _reap(pid)
                self.check()  # also once after the exit: a burst between two polls counts
                if status is not None or gone:
                    return status
                select.select([pidfd], [], [], self.interval())
        finally:
            os.close(pidfd)


def _reap(pid: int) -> tuple[int | None, bool]:
    """Reap every exited child without blocking; (the job's status if it exited, no children)."""
    status = None
    while True:
        try:
            waited, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status, True
        if waited == 0:
            return status, False
        if waited == pid:
            status = raw


def _floor(total: int) -> int:
    return total // _FLOOR_FRACTION


def open_watch(watch: DiskWatch) -> DiskWatcher:
    """Open the writable places and record each filesystem's baseline (before the job runs)."""
    filesystems: dict[int, _Filesystem] = {}
    for path in watch.paths:
        # O_NOFOLLOW: the place itself must not be a link swapped in after planning (F5).
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        device = os.fstat(fd).st_dev
        if device in filesystems:  # binds of one filesystem: count its growth once
            os.close(fd)
            continue
        st = os.fstatvfs(fd)
        filesystems[device] = _Filesystem(
            fd=fd,
            path=path,
            frsize=st.f_frsize,
            free_blocks=st.f_bfree,
            free_inodes=st.f_ffree,
            floor_bytes=min(_FLOOR_MAX_BYTES, _floor(st.f_blocks * st.f_frsize)),
            floor_inodes=min(_FLOOR_MAX_INODES, _floor(st.f_files)),
        )
    return DiskWatcher(watch.cap_bytes, list(filesystems.values()))

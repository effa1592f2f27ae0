"""The disk cap: the supervisor stops a job whose writable places grew past ``disk_bytes``.

closes: a job filling the host disk with many files, each below RLIMIT_FSIZE (F12), e.g. a
hostile repository in a clone job filling the gateway's state filesystem.

Runs in the supervisor (pid 1 of the job's namespaces, or its subreaper outside the full
tier), which already owns the deadline. ``open_watch`` runs before the job is forked: it opens
each writable place (O_PATH, last component not followed) and records, once per filesystem,
its free blocks and inodes at the start. ``DiskWatcher.wait`` then reaps children
until the job exits, re-reading ``fstatvfs`` on a timer that shrinks as the growth nears the
cap, and raises ``DiskCapExceeded`` (the supervisor kills the whole tree) when either holds:

- cap: the used blocks of those filesystems grew, summed, by more than ``cap_bytes``;
- floor: a filesystem that grew has less free space (or fewer free inodes) than its floor,
  min(1 GiB, 2 % of its size) (min(100k, 2 %) inodes): whatever the cap, the host keeps room.

Confirmation (``DiskWatch.confined``: the job can write only below its places, i.e. the full
tier or Landlock write rules; in tier none it writes anywhere and the cap stays as above):
when the growth passes the cap, the supervisor freezes the job's tree (``_freeze``) and counts
what the job holds (``_diskcount``: the places' trees and the files its processes hold open or
map unlinked, changed since the job started). Past the cap, or not countable, it kills as
before; otherwise the rest of the growth is a neighbour's: the trigger moves up by it, so the
job may add its remaining (cap - count) before the next count, and the tree is thawed. A count
starts at least ``COUNT_GAP_SECONDS`` and ten times its last duration after the previous one;
a trigger sooner keeps the tree frozen until then: a busy neighbour slows a job, the
supervisor walks at most a tenth of the time, and the job writes nothing unwatched meanwhile.

Invariants: one fstatvfs per filesystem per poll (~0.5 us) below the cap, nothing on the path
of a job that exits before its first poll but one pidfd and the baseline reads. Without
confirmation every writer on the filesystem counts; with it, only what the count finds.
Overshoot: the job's write rate times the poll interval near the cap (``MIN_POLL_SECONDS``),
plus the supervisor's wake-up and kill latency (and, when confirming, at most
``FREEZE_SLACK_BYTES`` written while the tree stops), as long as the job writes slower than
``ASSUMED_MAX_RATE`` (page-cache writes measured ~4.5 GiB/s per core here); fallocate, which
allocates at ~500 GiB/s, is refused by seccomp (EOPNOTSUPP: glibc then writes). Exact where
the filesystem reserves delayed allocations at write time (ext4, xfs, tmpfs); approximate on
btrfs and network filesystems.

Out of scope: exact per-job accounting (project quotas), files already on disk before the job
started (only growth counts), the private /tmp (its tmpfs has its own size), and removing what
the stopped job wrote (the caller owns its directories).
"""

from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass
from typing import Any, Final

from auto_review.sandbox import _diskcount, _freeze

__all__ = [
    "ASSUMED_MAX_RATE",
    "COUNT_GAP_SECONDS",
    "FREEZE_SLACK_BYTES",
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
COUNT_GAP_SECONDS: Final = 0.5  # between the end of a count and the start of the next
# What the job may add while its tree stops: SIGSTOP lets a write(2) in progress finish (up to
# RLIMIT_FSIZE, at page-cache speed, in every process), SIGKILL aborts it; past this, we kill.
FREEZE_SLACK_BYTES: Final = 32 * _MIB
_COUNT_DUTY: Final = 10  # ... and at least ten times the last count's duration


class DiskCapExceeded(Exception):
    """The job's writable places passed the cap or a floor (raised in the supervisor only)."""


@dataclass(frozen=True)
class DiskWatch:
    """What the supervisor watches (pure data in the Plan): writable places and the cap."""

    paths: tuple[str, ...]
    cap_bytes: int
    confined: bool = False  # the job writes nowhere else: a count can confirm the growth


@dataclass
class _Filesystem:
    fd: int
    device: int
    path: str
    frsize: int
    free_blocks: int  # f_bfree at the start
    free_inodes: int  # f_ffree at the start
    floor_bytes: int
    floor_inodes: int


class DiskWatcher:
    """The open watch of one job: its filesystems and their baselines."""

    def __init__(
        self,
        cap_bytes: int,
        filesystems: list[_Filesystem],
        *,
        places: list[int],
        start: _diskcount.JobStart | None,
    ) -> None:
        self.cap_bytes = cap_bytes
        self.filesystems = filesystems
        self.headroom = cap_bytes
        self.places = places  # an O_PATH fd per writable place, for the count
        self.start = start  # None: not confined, no count
        self.foreign = 0  # growth the counts found was not the job's
        self.counts = 0
        self.next_count = 0.0  # time.monotonic() before which no count starts

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
            "confirm": self.start is not None,
        }

    def check(self) -> None:
        """Raise DiskCapExceeded if a filesystem passed its floor, or the growth passed the cap
        and (when confined) a count of the frozen job confirms it is the job's."""
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
        if grown - self.foreign > self.cap_bytes:
            past = (
                f"the job's writable places grew by {(grown - self.foreign) / _MIB:.1f} MiB, "
                f"past its disk cap of {self.cap_bytes // _MIB} MiB"
            )
            if self.start is None:
                raise DiskCapExceeded(f"{past} (measured per filesystem: every writer counts)")
            self.foreign = grown - self._confirm(past, self.start, grown)
        self.headroom = min(headroom, self.cap_bytes - (grown - self.foreign))

    def _grown(self) -> int:
        return sum(
            max((fs.free_blocks - os.fstatvfs(fs.fd).f_bfree) * fs.frsize, 0)
            for fs in self.filesystems
        )

    def _confirm(self, past: str, start: _diskcount.JobStart, grown: int) -> int:
        """Freeze the job and count what it holds; return that if within the cap (the tree
        thawed), else raise DiskCapExceeded with the tree still frozen for the kill."""
        frozen = _freeze.freeze(lambda: self._grown() - grown <= FREEZE_SLACK_BYTES)
        if frozen is None:
            raise DiskCapExceeded(f"{past}; the job's tree did not stop to be counted")
        thaw = True
        try:
            time.sleep(max(self.next_count - time.monotonic(), 0))  # frozen meanwhile
            began = time.monotonic()
            devices = frozenset(fs.device for fs in self.filesystems)
            held = _diskcount.count(self.places, devices, start, frozen.live)
            if not held.unconfirmed and not _freeze.unchanged(frozen):
                held = _diskcount.Count(0, "a job process ran during the count")
            ended = time.monotonic()
            self.counts += 1
            self.next_count = ended + max(COUNT_GAP_SECONDS, _COUNT_DUTY * (ended - began))
            thaw = not held.unconfirmed and held.bytes <= self.cap_bytes
        finally:
            if thaw:  # also when a signal (deadline, stop) interrupted: the caller kills anyway
                _freeze.thaw(frozen)
        if held.unconfirmed:
            raise DiskCapExceeded(
                f"{past}, and counting could not tell its share: {held.unconfirmed}"
            )
        if held.bytes > self.cap_bytes:
            raise DiskCapExceeded(
                f"{past}, confirmed by counting: it holds {held.bytes / _MIB:.1f} MiB there"
            )
        return held.bytes

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
    places = []
    for path in watch.paths:
        # O_NOFOLLOW: the place itself must not be a link swapped in after planning (F5).
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        places.append(fd)
        device = os.fstat(fd).st_dev
        if device in filesystems:  # binds of one filesystem: count its growth once
            continue
        st = os.fstatvfs(fd)
        filesystems[device] = _Filesystem(
            fd=fd,
            device=device,
            path=path,
            frsize=st.f_frsize,
            free_blocks=st.f_bfree,
            free_inodes=st.f_ffree,
            floor_bytes=min(_FLOOR_MAX_BYTES, _floor(st.f_blocks * st.f_frsize)),
            floor_inodes=min(_FLOOR_MAX_INODES, _floor(st.f_files)),
        )
    # The count's baseline is the start time: only inodes changed since then are the job's,
    # so nothing is walked here (a large pre-existing --rw tree would cost every job a walk).
    start = _diskcount.job_start() if watch.confined else None
    return DiskWatcher(watch.cap_bytes, list(filesystems.values()), places=places, start=start)

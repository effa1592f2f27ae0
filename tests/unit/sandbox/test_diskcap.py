"""The disk cap's watcher on a real filesystem: a private tmpfs, where the test itself plays the
job (a forked child of the watching process) and its neighbour (writes outside the job's place)."""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import in_child, require

from auto_review.sandbox import Tier, _diskcount, _freeze, diskcap, kernel, namespaces

pytestmark = pytest.mark.sandbox
_MIB = 1024 * 1024
_keep: list[object] = []  # what a forked test job must hold until it is killed


def _private_tmpfs(where: Path, options: str) -> str:
    """In a forked child: a tmpfs of our own on ``where`` (user + mount namespace)."""
    namespaces.enter_namespaces(kernel.CLONE_NEWUSER | kernel.CLONE_NEWNS, os.getuid(), os.getgid())
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE, None)
    kernel.mount("tmpfs", str(where), "tmpfs", 0, options)
    return str(where)


def _write(path: str, mib: int) -> None:
    with open(path, "wb") as fh:
        fh.write(b"\xa5" * (mib * _MIB))


def test_watcher_passes_growth_below_the_cap_and_raises_past_it(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> list[str]:
        where = _private_tmpfs(tmp_path, "size=256m")
        os.mkdir(f"{where}/a")
        os.mkdir(f"{where}/b")
        watcher = diskcap.open_watch(diskcap.DiskWatch((f"{where}/a", f"{where}/b"), 16 * _MIB))
        seen = [f"filesystems={len(watcher.filesystems)}"]
        _write(f"{where}/a/one", 6)
        _write(f"{where}/b/two", 6)
        watcher.check()  # 12 MiB of 16: fine
        seen.append("under")
        _write(f"{where}/b/three", 6)
        try:
            watcher.check()
        except diskcap.DiskCapExceeded as exc:
            seen.append(str(exc))
        return seen

    seen = in_child(child)
    assert seen[:2] == ["filesystems=1", "under"]  # two places on one filesystem count once
    assert "past its disk cap of 16 MiB" in seen[2]


def test_watcher_counts_only_growth_since_the_start(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=256m")
        _write(f"{where}/before", 32)  # already there: not the job's
        watcher = diskcap.open_watch(diskcap.DiskWatch((where,), 16 * _MIB))
        _write(f"{where}/after", 8)
        watcher.check()
        return "ok"

    assert in_child(child) == "ok"


def test_watcher_raises_at_the_free_space_floor_before_the_cap(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=64m")
        _write(f"{where}/others", 60)  # someone else nearly filled it
        watcher = diskcap.open_watch(diskcap.DiskWatch((where,), 1024 * _MIB))
        watcher.check()  # no growth yet: a full disk alone is not the job's doing
        _write(f"{where}/job", 3)
        try:
            watcher.check()
        except diskcap.DiskCapExceeded as exc:
            return str(exc)
        return "not raised"

    assert "below its floor" in in_child(child)


def test_watcher_raises_at_the_inode_floor_when_the_job_creates_files(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=64m,nr_inodes=1000")
        watcher = diskcap.open_watch(diskcap.DiskWatch((where,), 1024 * _MIB))
        try:
            for n in range(1000):
                with open(f"{where}/empty-{n}", "wb"):
                    pass
                watcher.check()
        except diskcap.DiskCapExceeded as exc:
            return f"{n} {exc}"
        except OSError as exc:
            return f"ran out first: {exc}"
        return "not raised"

    answer = in_child(child)
    assert "free inodes" in answer, answer
    assert int(answer.split()[0]) < 1000 - 10  # stopped with the floor's 20 inodes left, about


def test_watcher_polls_faster_as_the_headroom_shrinks(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> list[float]:
        where = _private_tmpfs(tmp_path, "size=64g")  # a limit, not an allocation
        far = diskcap.open_watch(diskcap.DiskWatch((where,), 2048 * _MIB))
        near = diskcap.open_watch(diskcap.DiskWatch((where,), 64 * _MIB))
        _write(f"{where}/most", 60)
        far.check()
        near.check()
        return [far.interval(), near.interval()]

    far, near = in_child(child)
    assert far == pytest.approx(0.1)  # a writer at ASSUMED_MAX_RATE needs > 0.1 s for 2 GiB
    assert near == pytest.approx(diskcap.MIN_POLL_SECONDS)


def _confined(where: str, cap_mib: int = 16) -> diskcap.DiskWatcher:
    os.makedirs(f"{where}/job", exist_ok=True)
    return diskcap.open_watch(diskcap.DiskWatch((f"{where}/job",), cap_mib * _MIB, confined=True))


def _job(body: Callable[[], None]) -> int:
    """Fork a 'job' child of the watcher's process that runs ``body``, says so, then sleeps."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            body()
            os.write(ready_w, b"r")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"r"
    os.close(ready_r)
    return pid


def _end(pid: int) -> str:
    """The job's state letter (/proc/PID/stat), then kill and reap it."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        state = fh.read().rsplit(")", 1)[1].split()[0]
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return state


def _raised(watcher: diskcap.DiskWatcher) -> str:
    try:
        watcher.check()
    except diskcap.DiskCapExceeded as exc:
        return str(exc)
    return "not raised"


def test_confined_watcher_spares_a_job_whose_neighbour_grew_the_filesystem_past_the_cap(
    tmp_path: Path,
) -> None:
    require(Tier.FULL)

    def child() -> list[object]:
        where = _private_tmpfs(tmp_path, "size=256m")
        watcher = _confined(where)
        _write(f"{where}/job/own", 4)
        _write(f"{where}/neighbour", 20)  # same filesystem, outside the job's place
        watcher.check()  # 24 MiB of growth, 4 of them the job's: spared
        seen: list[object] = [watcher.counts]
        _write(f"{where}/job/more", 14)  # the job's own 18 MiB pass the 16 MiB cap
        seen.append(_raised(watcher))
        return seen

    counts, stopped = in_child(child)
    assert counts == 1
    assert "past its disk cap of 16 MiB, confirmed by counting: it holds 18.0 MiB" in stopped


def test_confined_watcher_spares_a_job_with_an_unreaped_zombie(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=256m")
        watcher = _confined(where)

        def zombie() -> None:
            if os.fork() == 0:  # exits at once; the job never reaps it
                os._exit(0)
            time.sleep(0.1)

        pid = _job(zombie)
        _write(f"{where}/neighbour", 20)
        # A zombie holds no files, and its /proc fd directory is closed to an unprivileged
        # supervisor: it must not make the count fail.
        stopped = _raised(watcher)
        _end(pid)
        return stopped

    assert in_child(child) == "not raised"


def test_unconfined_watcher_counts_every_writer_on_the_filesystem(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=256m")
        os.mkdir(f"{where}/job")
        watcher = diskcap.open_watch(diskcap.DiskWatch((f"{where}/job",), 16 * _MIB))
        _write(f"{where}/neighbour", 20)  # tier none: the job may have written it anywhere
        return _raised(watcher)

    assert "every writer counts" in in_child(child)


def test_confined_watcher_counts_an_unlinked_file_the_job_holds_open(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> list[str]:
        where = _private_tmpfs(tmp_path, "size=256m")
        watcher = _confined(where)

        def hide() -> None:
            fh = open(f"{where}/job/hidden", "wb")  # noqa: SIM115 - held open by the job
            os.unlink(f"{where}/job/hidden")
            fh.write(b"\xa5" * (20 * _MIB))
            fh.flush()
            _keep.append(fh)

        pid = _job(hide)
        return [_raised(watcher), _end(pid)]

    stopped, state = in_child(child)
    assert "confirmed by counting: it holds 20.0 MiB" in stopped
    assert state == "T"  # left frozen for the kill, not thawed to write on


def test_confined_watcher_cannot_confirm_a_job_hiding_a_file_in_a_unix_socket(
    tmp_path: Path,
) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=256m")
        watcher = _confined(where)

        def hide() -> None:
            keep = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            fd = os.open(f"{where}/job/hidden", os.O_RDWR | os.O_CREAT, 0o600)
            os.write(fd, b"\xa5" * (20 * _MIB))
            os.unlink(f"{where}/job/hidden")
            socket.send_fds(keep[0], [b""], [fd])  # in flight: in no fd table, in no map
            os.close(fd)
            _keep.append(keep)

        pid = _job(hide)
        stopped = _raised(watcher)
        _end(pid)
        return stopped

    assert "counting could not tell its share: process" in (stopped := in_child(child)), stopped
    assert "unix socket with data queued" in stopped


def test_confined_watcher_cannot_confirm_a_job_mapping_an_unlinked_file(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=256m")
        watcher = _confined(where)

        def hide() -> None:
            fd = os.open(f"{where}/job/hidden", os.O_RDWR | os.O_CREAT, 0o600)
            os.write(fd, b"\xa5" * (20 * _MIB))
            # libc's mmap, not Python's, which keeps a dup of the fd: a page keeps all of it.
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [
                ctypes.c_void_p,
                ctypes.c_size_t,
                *[ctypes.c_int] * 3,
                ctypes.c_long,
            ]
            assert libc.mmap(None, mmap.PAGESIZE, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0) != -1
            os.close(fd)
            os.unlink(f"{where}/job/hidden")

        pid = _job(hide)
        stopped = _raised(watcher)
        _end(pid)
        return stopped

    # map_files, the only way to stat it, needs CAP_SYS_ADMIN in the initial user namespace.
    assert "maps an unlinked file we cannot stat" in in_child(child)


def test_confined_watcher_cannot_confirm_a_tree_deeper_than_the_walk_bound(tmp_path: Path) -> None:
    require(Tier.FULL)

    def child() -> str:
        where = _private_tmpfs(tmp_path, "size=256m")
        watcher = _confined(where)
        deep = f"{where}/job"
        for _ in range(_diskcount.MAX_DEPTH + 1):
            deep = f"{deep}/d"
            os.mkdir(deep)
        _write(f"{where}/neighbour", 20)
        return _raised(watcher)

    assert f"nested more than {_diskcount.MAX_DEPTH} deep" in in_child(child)


@pytest.mark.parametrize(
    ("bound", "value", "said"),
    [("MAX_ENTRIES", 50, "more than 50 entries"), ("MAX_SECONDS", 0, "took more than 0 s")],
)
def test_confined_watcher_cannot_confirm_a_count_past_its_entry_or_time_bound(
    tmp_path: Path, bound: str, value: int, said: str
) -> None:
    require(Tier.FULL)

    def child() -> str:
        setattr(_diskcount, bound, value)  # this forked child's copy of the module only
        where = _private_tmpfs(tmp_path, "size=256m")
        watcher = _confined(where)
        for i in range(1100):  # the clock is read every 1024 entries
            open(f"{where}/job/f{i}", "wb").close()
        _write(f"{where}/neighbour", 20)
        return _raised(watcher)

    stopped = in_child(child)
    assert said in stopped, stopped


def test_confirmations_are_spaced_so_a_busy_neighbour_cannot_keep_the_supervisor_walking(
    tmp_path: Path,
) -> None:
    require(Tier.FULL)

    def child() -> list[object]:
        where = _private_tmpfs(tmp_path, "size=1g")
        watcher = _confined(where)
        pid = _job(lambda: _write(f"{where}/job/own", 2))
        for _ in range(20):  # polls below the trigger: no count
            watcher.check()
        began = time.monotonic()
        for n in range(3):  # every poll past the trigger: a count, but one per gap
            _write(f"{where}/neighbour-{n}", 20)
            watcher.check()
        took = time.monotonic() - began
        return [watcher.counts, took, _end(pid)]

    counts, took, state = in_child(child)
    assert counts == 3
    assert took >= 2 * diskcap.COUNT_GAP_SECONDS  # the second and third waited, frozen
    assert state in {"S", "R"}, state  # thawed after each count


def test_a_write_that_does_not_stop_for_the_count_is_killed_within_the_freeze_slack(
    tmp_path: Path,
) -> None:
    require(Tier.FULL)
    whole = 512  # MiB in one write(2): SIGSTOP waits for its end, SIGKILL aborts it

    def child() -> list[object]:
        where = _private_tmpfs(tmp_path, "size=1g")
        watcher = _confined(where)
        go_r, go_w = os.pipe()
        if (pid := os.fork()) == 0:
            fd = os.open(f"{where}/job/big", os.O_WRONLY | os.O_CREAT, 0o600)
            zeros = mmap.mmap(-1, whole * _MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            os.write(go_w, b"g")
            os.write(fd, zeros)
            time.sleep(60)
            os._exit(0)
        assert os.read(go_r, 1) == b"g"
        stopped, deadline = "not raised", time.monotonic() + 10
        while stopped == "not raised" and time.monotonic() < deadline:
            stopped = _raised(watcher)
            time.sleep(diskcap.MIN_POLL_SECONDS)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return [stopped, os.stat(f"{where}/job/big").st_blocks * 512 // _MIB]

    stopped, left_mib = in_child(child)
    assert "did not stop to be counted" in stopped, stopped
    assert left_mib < whole // 2, left_mib  # cap + slack + the kill's latency, not the whole


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def test_freeze_stops_the_whole_tree_and_notices_a_process_that_ran_since() -> None:
    def child() -> list[object]:
        grandchild_r, grandchild_w = os.pipe()

        def spawn() -> None:
            if (pid := os.fork()) == 0:
                while True:  # busy: it would move on its own if it were not stopped
                    pass
            os.write(grandchild_w, str(pid).encode())

        job = _job(spawn)
        grandchild = int(os.read(grandchild_r, 32))
        frozen = _freeze.freeze(lambda: True)
        assert frozen is not None
        seen: list[object] = [
            sorted(frozen.pids) == sorted([job, grandchild]),
            [_state(job), _state(grandchild)],
            _freeze.unchanged(frozen),  # positive control: nothing ran
        ]
        os.kill(grandchild, signal.SIGCONT)  # what a job process could do to a stopped one
        time.sleep(0.05)
        os.kill(grandchild, signal.SIGSTOP)
        time.sleep(0.05)
        seen += [_state(grandchild), _freeze.unchanged(frozen)]
        _freeze.thaw(frozen)
        time.sleep(0.05)
        seen.append(_state(grandchild))
        os.kill(grandchild, signal.SIGKILL)
        _end(job)
        return seen

    both, states, still, restopped, after_relay, thawed = in_child(child)
    assert both
    assert states == ["T", "T"]
    assert still is True
    assert restopped == "T"  # stopped again, as a relay would leave it
    assert after_relay is False  # but its context switches moved
    assert thawed == "R"

"""The disk cap's watcher on a real filesystem: a private tmpfs, so no other writer counts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import in_child, require

from auto_review.sandbox import Tier, diskcap, kernel, namespaces

pytestmark = pytest.mark.sandbox
_MIB = 1024 * 1024


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

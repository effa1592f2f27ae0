"""Limits and hygiene steps, each checked on the real kernel in a forked child."""

from __future__ import annotations

import os
import resource

import pytest
from tests.unit.sandbox._helpers import in_child, require

from auto_review.sandbox import Limits, Tier, kernel, limits, run_callable, run_policy
from auto_review.sandbox.errors import SandboxJobFailed, SandboxPolicyInvalid


def test_rlimits_are_set_hard_and_read_back() -> None:
    def child() -> dict[str, object]:
        applied = limits.apply_rlimits(
            Limits(
                cpu_seconds=50,
                address_space_bytes=1 << 30,
                file_size_bytes=1 << 20,
                open_files=64,
                processes=None,
            )
        )
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
            raised = True
        except ValueError:
            raised = False
        return {"applied": applied, "hard": hard, "raised": raised}

    seen = in_child(child)
    assert seen["applied"] == {
        "core": 0,
        "cpu": 50,
        "address_space": 1 << 30,
        "file_size": 1 << 20,
        "open_files": 64,
    }
    assert seen["hard"] == 64
    if os.geteuid() != 0:
        assert seen["raised"] is False  # the job cannot raise what we set


def test_no_new_privs_is_set_and_read_back() -> None:
    def child() -> int:
        limits.set_no_new_privs()
        with open("/proc/self/status", encoding="ascii") as fh:
            return int(next(ln for ln in fh if ln.startswith("NoNewPrivs")).split()[1])

    assert in_child(child) == 1


def test_close_fds_except_keeps_exactly_the_allowlist() -> None:
    pid = os.fork()
    if pid == 0:  # report through the exit status: every other fd, pipes included, is closed
        code = 1
        try:
            for fd in (40, 41, 42):
                os.dup2(2, fd)
            limits.close_fds_except({0, 1, 2, 41})
            left = sorted(int(n) for n in os.listdir("/proc/self/fd"))
            code = 0 if left in ([0, 1, 2, 3, 41], [0, 1, 2, 4, 41]) else 1  # 3/4: listdir's
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_drop_capabilities_leaves_no_effective_capability() -> None:
    def child() -> dict[str, int]:
        limits.set_no_new_privs()
        bounding = limits.drop_capabilities(kernel.last_capability())
        with open("/proc/self/status", encoding="ascii") as fh:
            caps = {ln.split(":")[0]: int(ln.split()[1], 16) for ln in fh if ln.startswith("Cap")}
        return {**caps, "bounding": int(bounding)}

    seen = in_child(child)
    assert seen["CapEff"] == 0
    assert seen["CapPrm"] == 0
    assert seen["CapAmb"] == 0
    if seen["bounding"]:
        assert seen["CapBnd"] == 0


MEMORY_JOB = """
def grab(payload: bytes) -> bytes:
    block = bytearray(int(payload))
    return str(len(block)).encode()
"""


@pytest.mark.sandbox
def test_memory_cap_stops_an_allocation_that_fits_without_it(tmp_path: os.PathLike[str]) -> None:
    require(Tier.FULL)
    module = os.path.join(tmp_path, "memjob.py")
    with open(module, "w", encoding="utf-8") as fh:
        fh.write(MEMORY_JOB)
    os.chmod(tmp_path, 0o755)  # noqa: S103 - root-started jobs run as host nobody
    size = str(300 * 1024 * 1024).encode()
    ok = run_callable(
        "memjob:grab",
        size,
        run_policy(),
        timeout=60,
        memory_bytes=2048 * 1024 * 1024,
        pythonpath=[str(tmp_path)],
    )
    assert ok == size
    with pytest.raises(SandboxJobFailed, match="MemoryError"):
        run_callable(
            "memjob:grab",
            size,
            run_policy(),
            timeout=60,
            memory_bytes=200 * 1024 * 1024,
            pythonpath=[str(tmp_path)],
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_seconds", -1),
        ("address_space_bytes", -1),
        ("file_size_bytes", -1),
        ("open_files", -1),
        ("open_files", None),
        ("processes", -1),
        ("disk_bytes", -1),
        ("cpu_seconds", 1.5),
        ("processes", True),
        ("file_size_bytes", "1024"),
    ],
)
def test_limits_refuse_what_setrlimit_would_read_as_no_limit_or_not_a_number(
    field: str, value: object
) -> None:
    # -1 is RLIM_INFINITY to setrlimit, and min(-1, ceiling) is -1: the job server's clamp
    # (finding F7) must never see one.
    with pytest.raises(SandboxPolicyInvalid, match=field):
        Limits(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(SandboxPolicyInvalid, match="address_space_bytes"):
        Limits().with_memory(-1)
    assert Limits(cpu_seconds=0, processes=None).cpu_seconds == 0  # zero and None stay valid

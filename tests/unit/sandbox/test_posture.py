"""Posture: parsed from /proc, compared with the policy, serialisable, and refused on mismatch."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile

import pytest
from tests.unit.sandbox._helpers import require

from auto_review.sandbox import (
    CompletedRun,
    Tier,
    limits,
    posture,
    read_back,
    run_command,
    run_policy,
)

STATUS = """Name:\tcat
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t1
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t0000000000000000
CapAmb:\t0000000000000000
"""


def test_status_fields_are_parsed_with_capabilities_as_integers() -> None:
    fields = posture.parse_status(STATUS.replace("CapBnd:\t0000000000000000", "CapBnd:\t1ff"))
    assert fields["no_new_privs"] == 1
    assert fields["seccomp"] == 2
    assert fields["cap_bnd"] == 0x1FF


def _syscall_and_proc_views() -> tuple[dict[str, int], dict[str, int]]:
    with open("/proc/self/status", encoding="ascii") as fh:
        proc = posture.parse_status(fh.read())
    by_syscall = posture.read_back_by_syscall()
    return by_syscall, {k: proc[k] for k in by_syscall}


def test_read_back_by_syscall_agrees_with_proc_status_before_and_after_no_new_privs() -> None:
    by_syscall, proc = _syscall_and_proc_views()
    assert by_syscall == proc
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # set no_new_privs in a child only: it cannot be unset
        try:
            limits.set_no_new_privs()
            os.write(write_fd, json.dumps(_syscall_and_proc_views()).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        child_syscall, child_proc = json.loads(fh.read())
    os.waitpid(pid, 0)
    assert child_syscall == child_proc
    assert child_syscall["no_new_privs"] == 1


def test_mismatches_are_empty_when_the_read_back_matches_the_policy() -> None:
    expected = posture.Expected(
        seccomp=True, bounding_set_empty=True, new_namespaces=("user",), host_namespaces={"user": 1}
    )
    assert posture.mismatches(expected, posture.parse_status(STATUS), {"user": 2}) == []


def test_mismatches_name_every_control_that_does_not_hold() -> None:
    expected = posture.Expected(
        seccomp=True,
        bounding_set_empty=True,
        new_namespaces=("user",),
        shared_namespaces=("net",),
        host_namespaces={"user": 1, "net": 5},
    )
    weak = STATUS.replace("NoNewPrivs:\t1", "NoNewPrivs:\t0").replace("Seccomp:\t2", "Seccomp:\t0")
    weak = weak.replace("CapEff:\t0000000000000000", "CapEff:\t0000000000000001")
    problems = posture.mismatches(expected, posture.parse_status(weak), {"user": 1, "net": 6})
    text = " ".join(problems)
    for fragment in ("NoNewPrivs", "Seccomp", "cap_eff", "user namespace", "net namespace"):
        assert fragment in text


def test_ids_are_read_back_and_a_leftover_root_id_is_a_mismatch() -> None:
    switched = STATUS + "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n"
    expected = posture.Expected(seccomp=True, bounding_set_empty=True, ids=65534)
    fields = posture.parse_status(switched)
    assert (fields["uid"], fields["euid"], fields["fsuid"], fields["sgid"]) == (65534,) * 4
    assert posture.mismatches(expected, fields, {}) == []
    half = switched.replace("Uid:\t65534\t65534\t65534\t65534", "Uid:\t65534\t0\t0\t0")
    problems = " ".join(posture.mismatches(expected, posture.parse_status(half), {}))
    assert "euid is 0" in problems
    assert "fsuid is 0" in problems


def test_read_back_of_this_unconfined_process_shows_no_filter() -> None:
    data = read_back()
    assert data["status"]["seccomp"] in (0, 2)
    assert "open_files" in data["rlimits"]


@pytest.mark.sandbox
def test_job_posture_is_json_and_agrees_with_what_the_job_reads_itself() -> None:
    require(Tier.FULL)
    done = run_command(["cat", "/proc/self/status"], run_policy(), timeout=60)
    own = posture.parse_status(done.stdout.decode())
    data = json.loads(json.dumps(done.posture.to_dict()))
    assert data["tier_requested"] == data["tier_effective"] == "full"
    reported = data["read_back"]["status"]
    for key in ("no_new_privs", "seccomp", "cap_eff", "cap_prm", "cap_bnd", "cap_amb"):
        assert reported[key] == own[key], key
    states = {c["name"]: c["state"] for c in data["controls"]}
    assert states["seccomp"] == "on"
    assert states["cgroup_limits"] in ("on", "unavailable")
    assert data["read_back"]["ns"]["pid"] != os.stat("/proc/self/ns/pid").st_ino


def _disk_cap(done: CompletedRun) -> tuple[str | None, str]:
    control = next(c for c in done.posture.controls if c.name == "disk_cap")
    return control.state, control.reason


@pytest.mark.sandbox
@pytest.mark.parametrize("tier", [Tier.FULL, Tier.RESTRICTED])
def test_disk_cap_is_reported_on_with_how_it_is_enforced(tier: Tier) -> None:
    require(tier)
    target = tempfile.mkdtemp(prefix="ar-posture-disk-", dir="/var/tmp")
    os.chmod(target, 0o777)  # noqa: S103 - a root-started restricted job is host nobody (F11)
    try:
        done = run_command(["true"], run_policy(rw=[target]), timeout=60, isolation=tier)
    finally:
        os.rmdir(target)
    state, reason = _disk_cap(done)
    assert state == "on", reason
    assert "supervisor watchdog: 2048 MiB" in reason
    # Both tiers confine writes to the places, so a count tells the job's growth from others'.
    assert "a neighbour's writes do not stop it" in reason
    assert done.posture.read_back["disk_cap"]["confirm"] is True
    assert done.posture.read_back["disk_cap"]["filesystems"] >= 1  # what the supervisor saw


@pytest.mark.sandbox
def test_disk_cap_is_reported_off_for_a_policy_without_one_and_on_without_host_writes() -> None:
    require(Tier.FULL)
    policy = run_policy()
    uncapped = dataclasses.replace(
        policy, limits=dataclasses.replace(policy.limits, disk_bytes=None)
    )
    state, reason = _disk_cap(run_command(["true"], uncapped, timeout=60))
    assert (state, reason) == ("off", "policy run sets no disk cap")
    state, reason = _disk_cap(run_command(["true"], policy, timeout=60))
    assert state == "on"
    assert reason.startswith("nothing writable on host disks")

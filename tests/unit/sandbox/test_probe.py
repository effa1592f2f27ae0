"""Tiers on real kernels: what the probe finds, and refusals that name the cause and the fix."""

from __future__ import annotations

import os
import threading

import pytest
from tests.unit.sandbox._helpers import in_child, require

from auto_review.sandbox import (
    KernelFeatureMissing,
    Tier,
    host_support,
    kernel,
    limits,
    namespaces,
    probe_host,
    require_tier,
    run_command,
    run_policy,
    seccomp,
)

pytestmark = pytest.mark.sandbox


def test_probe_reports_each_feature_with_a_reason() -> None:
    support = probe_host()
    for feature in (support.user_namespaces, support.seccomp, support.cgroup):
        assert feature.detail
        if not feature.available:
            assert feature.fix
    assert support.to_dict()["best_tier"] in {"full", "restricted", "none"}


def test_cgroup_limits_are_reported_unavailable_with_a_reason_when_not_delegated() -> None:
    cgroup = limits.cgroup_support()
    if cgroup.available:
        assert os.access(cgroup.path, os.W_OK)
    else:
        assert cgroup.reason  # e.g. "controllers memory, pids are not delegated to ..."


def test_none_tier_is_always_available_but_only_when_asked() -> None:
    assert require_tier(Tier.NONE, host_support()) is host_support()


def _refusal_inside_userns_with_max_zero() -> dict[str, str]:
    namespaces.enter_namespaces(kernel.CLONE_NEWUSER, os.getuid(), os.getgid())
    with open("/proc/sys/user/max_user_namespaces", "w", encoding="ascii") as fh:
        fh.write("0")
    support = probe_host()
    try:
        require_tier(Tier.FULL, support)
    except KernelFeatureMissing as exc:
        full = f"{exc.feature} | {exc.detail} | {exc.fix}"
    else:
        full = "accepted"
    restricted = "refused"
    if support.landlock_abi >= 4:
        done = run_command(["true"], run_policy(), timeout=60, isolation=Tier.RESTRICTED)
        restricted = f"rc={done.returncode}"
    return {"full": full, "restricted": restricted}


def test_full_tier_refuses_with_enospc_diagnosis_when_max_user_namespaces_is_zero() -> None:
    require(Tier.FULL)
    seen = in_child(_refusal_inside_userns_with_max_zero)
    assert "max_user_namespaces" in seen["full"]
    assert "ENOSPC" in seen["full"]
    if host_support().landlock_abi >= 4:
        assert seen["restricted"] == "rc=0"  # the lower tier still holds there


def test_full_tier_refuses_with_eperm_diagnosis_when_a_seccomp_policy_forbids_userns() -> None:
    require(Tier.FULL)

    def child() -> str:
        limits.set_no_new_privs()  # a container runtime's profile, played by our own filter
        seccomp.install(seccomp.assemble(seccomp.build_filter(seccomp.NO_NETWORK_FAMILIES)))
        try:
            require_tier(Tier.FULL, probe_host())
        except KernelFeatureMissing as exc:
            return f"{exc.detail} | {exc.fix}"
        return "accepted"

    seen = in_child(child)
    assert "EPERM" in seen
    assert "restricted" in seen  # the fix names the lower tier


def test_a_multithreaded_caller_gets_the_einval_diagnosis() -> None:
    require(Tier.FULL)

    def child() -> str:
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait)
        worker.start()
        try:
            namespaces.enter_namespaces(kernel.CLONE_NEWUSER, os.getuid(), os.getgid())
        except KernelFeatureMissing as exc:
            return exc.detail
        finally:
            stop.set()
            worker.join()
        return "accepted"

    assert "multithreaded" in in_child(child)


def test_spawning_from_a_multithreaded_caller_still_works() -> None:
    require(Tier.FULL)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        done = run_command(["true"], run_policy(), timeout=60)
    finally:
        stop.set()
        worker.join()
    assert done.returncode == 0  # the setup runs in a freshly forked single-threaded child

"""Turn a policy, a tier and call options into the pure-data ``Plan`` the children execute.

Everything the forked children need is computed here, before fork, in the caller: the view,
the Landlock rules, the assembled seccomp program, limits, environment, expectations for the
read-back. Nothing here touches the kernel beyond reading /proc.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Final

from auto_review.sandbox import (
    diskcap,
    identity,
    kernel,
    landlock,
    limits,
    mounts,
    namespaces,
    posture,
    seccomp,
)
from auto_review.sandbox._child import Plan
from auto_review.sandbox.egress import EGRESS_PROXY_PORT, proxy_env
from auto_review.sandbox.policy import Policy, trusted_paths
from auto_review.sandbox.probe import HostSupport, Tier

__all__ = ["build_plan"]

_BASE_ENV: Final = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_DEV_WRITABLE: Final = tuple(f"/dev/{name}" for name in mounts.DEVICES)


def _count_processes_of(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                continue
    return count


def _seccomp_program(policy: Policy, tier: Tier) -> bytes:
    families = policy.socket_families
    if tier is Tier.RESTRICTED:  # no mount view hides host sockets: no unix-socket clients,
        # and no IPC namespace hides the host's SysV IPC and message queues
        return seccomp.program_for(
            families - {socket.AF_UNIX}, frozenset({socket.AF_UNIX}), deny_ipc=True
        )
    return seccomp.program_for(families)


def build_plan(
    argv: Sequence[str],
    policy: Policy,
    tier: Tier,
    support: HostSupport,
    *,
    env: Mapping[str, str] | None,
    cwd: str | None,
    timeout: float | None,
    memory_bytes: int | None,
    stdio: tuple[int, int, int],
    pass_fds: Mapping[int, int],
    scratch: str | None,
    egress_fd: int | None = None,
) -> Plan:
    """The plan for one sandbox (``scratch``: the per-run writable dir outside the full tier;
    ``egress_fd``: where the outer child sends the egress listener, for a proxied policy)."""
    full = tier is Tier.FULL
    root_job = full and os.geteuid() == 0
    # Root, restricted tier: no user namespace to map, so the job becomes host nobody itself.
    job_uid = identity.restricted_job_id() if tier is Tier.RESTRICTED else None
    # The full tier enforces a policy's egress pairs with an empty network namespace whose only
    # way out is the caller's proxy; other tiers fall back to Landlock's port-only rule.
    proxied = full and bool(policy.egress)
    if proxied != (egress_fd is not None):
        raise ValueError("a proxied policy needs egress_fd, and only it")
    view = mounts.plan_view(policy.ro_paths, policy.rw_paths, trusted_paths()) if full else None
    meipass = getattr(sys, "_MEIPASS", None)
    if view is not None and root_job and isinstance(meipass, str):
        view = dataclasses.replace(view, idmapped_ro=(os.path.realpath(meipass),))
    # Inside a full-tier sandbox /tmp is its private tmpfs; elsewhere a per-run scratch dir.
    home = "/tmp" if full else (scratch or "/")  # noqa: S108
    child_env = {**_BASE_ENV, "HOME": home, "TMPDIR": home, **dict(env or {})}
    if proxied:  # no variable of the caller may send git around the proxy (or elsewhere)
        child_env = {k: v for k, v in child_env.items() if not k.lower().endswith("_proxy")}
        child_env.update(proxy_env())
    rules = None
    if tier is not Tier.NONE and support.landlock_abi > 0:
        if view is not None:
            read = [p for p, writable, _strict in view.binds if not writable] + ["/proc", "/dev"]
            private_tmp = "/tmp"  # noqa: S108 - the sandbox's own tmpfs
            write = [p for p, writable, _strict in view.binds if writable]
            write += [private_tmp, *_DEV_WRITABLE]
        else:
            read = list(policy.ro_paths)
            # Our own fresh scratch dir, resolved here so that only a link swapped in later
            # (a job with --rw on its parent) is refused by the no-follow open.
            own = [os.path.realpath(scratch)] if scratch else []
            write = [*policy.rw_paths, *_DEV_WRITABLE, *own]
        rules = landlock.LandlockRules(
            read_paths=tuple(read),
            write_paths=tuple(write),
            bind_ports=policy.tcp_bind_ports,
            connect_ports=(EGRESS_PROXY_PORT,) if proxied else policy.tcp_connect_ports,
            list_paths=("/",) if view is not None else (),
            follow=trusted_paths() | frozenset(_DEV_WRITABLE),
            host=_host_identity(full, root_job, job_uid),
        )
    new_ns: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    if full:
        host_net = policy.network and not proxied
        new_ns = ("user", "mnt", "pid", "ipc", "uts", "cgroup") + (() if host_net else ("net",))
        shared = ("net",) if host_net else ()
    job_limits = policy.limits.with_memory(memory_bytes)
    disk = None
    if job_limits.disk_bytes is not None:
        places = (
            [p for p, writable, _strict in view.binds if writable]
            if view is not None
            else [*policy.rw_paths, *([scratch] if scratch else [])]
        )
        if places:  # with none, only the private /tmp is writable: its tmpfs has a size
            # Confined (mount view or Landlock): what the job writes is below its places, so a
            # count of them can tell its growth from a neighbour's on the same filesystem.
            confined = view is not None or rules is not None
            disk = diskcap.DiskWatch(tuple(places), job_limits.disk_bytes, confined)
    cgroup = None
    if support.cgroup.available and tier is not Tier.NONE:
        cgroup = (
            limits.cgroup_support().path,
            f"auto-review-{os.getpid()}-{id(argv)}",
            job_limits.address_space_bytes,
            job_limits.processes,
        )
    return Plan(
        argv=tuple(argv),
        env=child_env,
        cwd=cwd or home,
        parent_pid=os.getpid(),
        outer_uid=os.getuid(),
        outer_gid=os.getgid(),
        ns_flags=_ns_flags(policy.network and not proxied, full, root_job),
        job_host_id=namespaces.ROOT_JOB_HOST_ID if root_job else None,
        idmap_fd=namespaces.shared_idmap_fd(namespaces.ROOT_JOB_HOST_ID) if root_job else None,
        view=view,
        tmp_size_bytes=policy.tmp_size_bytes,
        landlock_rules=rules,
        seccomp_program=None if tier is Tier.NONE else _seccomp_program(policy, tier),
        limits=job_limits,
        job_uid=job_uid,
        extra_processes=0 if full else _count_processes_of(job_uid or os.getuid()),
        stdio=stdio,
        pass_fds=tuple(pass_fds.items()),
        expected=posture.Expected(
            seccomp=tier is not Tier.NONE,
            bounding_set_empty=full or os.geteuid() == 0,
            new_namespaces=new_ns,
            shared_namespaces=shared,
            host_namespaces=posture.namespace_ids(),
            ids=job_uid,
        ),
        last_cap=kernel.last_capability(),
        timeout_seconds=timeout,
        cgroup=cgroup,
        landlock_abi=support.landlock_abi,
        egress_fd=egress_fd,
        disk=disk,
    )


def _host_identity(full: bool, root_job: bool, job_uid: int | None) -> identity.HostIdentity:
    """Whose host permissions the job's rule paths are opened with (for a refusal's advice)."""
    if root_job:  # its own user namespace maps it to host nobody (_child)
        return identity.HostIdentity(namespaces.ROOT_JOB_HOST_ID, full_tier=True, root_started=True)
    if job_uid is not None:
        return identity.HostIdentity(job_uid, full_tier=False, root_started=True)
    return identity.HostIdentity(os.getuid(), full_tier=full, root_started=False)


def _ns_flags(host_network: bool, full: bool, root_job: bool) -> int:
    if not full:
        return 0
    flags = namespaces.namespace_flags(host_network)
    # Root keeps the outer namespaces owned by the host's user namespace (only it can bind
    # root-only paths); the job then enters a user namespace of its own (see _child).
    return flags & ~kernel.CLONE_NEWUSER if root_job else flags

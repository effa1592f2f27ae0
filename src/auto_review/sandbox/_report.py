"""Turn a job's read-back into a ``Posture``: every control, its state, and the reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auto_review.sandbox.diskcap import MIN_POLL_SECONDS
from auto_review.sandbox.egress import EGRESS_PROXY_PORT
from auto_review.sandbox.policy import Policy
from auto_review.sandbox.posture import Control, Posture
from auto_review.sandbox.probe import HostSupport, Tier

__all__ = ["describe", "egress_control"]

_NS_CONTROLS = ("user", "mnt", "pid", "ipc", "uts", "cgroup")
_MIB = 1024 * 1024
_MIN_POLL_MS = MIN_POLL_SECONDS * 1000


def _namespaces(
    tier: Tier, policy: Policy, ns: Mapping[str, int], host: Mapping[str, int]
) -> list[Control]:
    out = []
    for name in (*_NS_CONTROLS, "net"):
        control = f"{name}_namespace"
        if tier is not Tier.FULL:
            out.append(Control(control, "off", f"tier {tier} uses no namespaces"))
        elif name == "net" and policy.network and not policy.egress:
            out.append(Control(control, "off", "policy shares the host network"))
        elif ns.get(name) is not None and ns.get(name) != host.get(name):
            extra = " (empty: loopback only)" if name == "net" else ""
            out.append(Control(control, "on", f"id {ns[name]} differs from the host's{extra}"))
        else:
            out.append(Control(control, "off", "read back equal to the host's"))
    return out


def _landlock(tier: Tier, policy: Policy, abi: int, ll: Mapping[str, Any]) -> list[Control]:
    if tier is Tier.NONE:
        return [
            Control(n, "off", "tier none")
            for n in ("landlock_fs", "landlock_tcp", "landlock_scope")
        ]
    if abi <= 0 or not ll.get("abi"):
        return [
            Control(n, "unavailable", "kernel has no Landlock")
            for n in ("landlock_fs", "landlock_tcp", "landlock_scope")
        ]
    out = [Control("landlock_fs", "on", f"ABI {ll['abi']}, {ll.get('fs_rules', 0)} path rules")]
    if abi < 4:
        out.append(Control("landlock_tcp", "unavailable", f"ABI {abi} < 4 has no TCP rules"))
    elif ll.get("tcp_bind") or ll.get("tcp_connect"):
        proxied = tier is Tier.FULL and bool(policy.egress)
        ports = [EGRESS_PROXY_PORT] if proxied else list(policy.tcp_connect_ports or [])
        bind = list(policy.tcp_bind_ports or []) if ll.get("tcp_bind") else "any"
        connect = ports if ll.get("tcp_connect") else "any"
        note = ""
        if proxied:
            note = " (the egress proxy's listener in the job's own network namespace)"
        elif policy.network and ll.get("tcp_connect"):
            note = " (ports only: any address on them is reachable; UDP is not covered)"
        out.append(
            Control("landlock_tcp", "on", f"bind ports {bind}, connect ports {connect}{note}")
        )
    else:
        out.append(Control("landlock_tcp", "off", "policy leaves TCP ports unrestricted"))
    if abi < 6:
        out.append(Control("landlock_scope", "unavailable", f"ABI {abi} < 6 has no IPC scoping"))
    else:
        out.append(
            Control(
                "landlock_scope",
                "on" if ll.get("scoped") else "off",
                "abstract unix sockets and signals scoped to the sandbox",
            )
        )
    return out


def _noexec_writable(tier: Tier, exec_writable: list[str] | None) -> Control:
    if tier is Tier.FULL and exec_writable:  # read back: a writable mount lost its noexec
        where = ", ".join(exec_writable)
        return Control("noexec_writable", "off", f"writable paths on an exec mount: {where}")
    if tier is Tier.FULL:
        return Control("noexec_writable", "on", "writable mounts are noexec")
    if tier is not Tier.NONE and exec_writable == []:
        return Control(
            "noexec_writable", "on", "every writable path is on a noexec mount (read back)"
        )
    # A kernel limit, not a missing step (docs/dev/REDTEAM-FINDINGS.md F6): Landlock governs
    # execve, not mmap(PROT_EXEC); SECBIT_EXEC_RESTRICT_FILE is advisory and glibc 2.36's ld.so
    # ignores it; only a noexec mount, which this tier cannot make, stops the loader.
    where = f": {', '.join(exec_writable)}" if exec_writable else ""
    return Control(
        "noexec_writable",
        "off",
        "no mount namespace: Landlock refuses execve of written files, but ld.so can still map "
        f"them (mmap is not governed by Landlock); writable paths on an exec mount{where} "
        "(mount them noexec to close this)",
    )


def _pairs(egress: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in egress)


def egress_control(
    tier: Tier,
    *,
    network: bool,
    egress: Iterable[tuple[str, int]],
    connect_ports: Iterable[int] | None,
    name: str = "egress",
) -> Control:
    """Where a job can send traffic in ``tier``, in words (``egress``: its allowed pairs)."""
    pairs = tuple(egress)
    if tier is Tier.NONE:
        return Control(name, "off", "tier none: the host network, unfiltered")
    if not network:
        where = " and an empty network namespace" if tier is Tier.FULL else ""
        return Control(name, "on", f"no network: no inet sockets (seccomp){where}")
    if pairs and tier is Tier.FULL:
        return Control(
            name,
            "on",
            f"proxied to {_pairs(pairs)} only: empty network namespace, host-side proxy "
            "(CONNECT and absolute-form http), no DNS or UDP",
        )
    ports = list(connect_ports or [])
    if pairs:
        return Control(
            name,
            "off",
            f"port-restricted, any address: Landlock TCP connect ports {ports} (tier {tier} has "
            "no network namespace for the proxy); UDP is not covered",
        )
    what = f"Landlock TCP connect ports {ports}" if ports else "no port rule"
    return Control(name, "off", f"host network shared: {what}; any address; UDP is not covered")


def _disk_cap(tier: Tier, policy: Policy, watch: Mapping[str, Any] | None) -> Control:
    cap = policy.limits.disk_bytes
    if cap is None:
        return Control("disk_cap", "off", f"policy {policy.name} sets no disk cap")
    if watch:
        unconfined = "; tier none confines no write to them" if tier is Tier.NONE else ""
        attribution = (
            "past the cap the job is frozen and what it holds there is counted (files changed "
            "since it started, open or mapped unlinked ones too): a neighbour's writes do not "
            "stop it, an uncountable job is stopped"
            if watch.get("confirm")
            else "every writer on those filesystems counts"
        )
        return Control(
            "disk_cap",
            "on",
            f"supervisor watchdog: {cap // _MIB} MiB of growth on the {watch.get('filesystems')} "
            "filesystem(s) of the writable places, and a free-space floor on each; fstatvfs "
            f"every {_MIN_POLL_MS:g}-100 ms, so the overshoot is about the write rate x "
            f"{_MIN_POLL_MS:g} ms; {attribution}; fallocate refused{unconfined}",
        )
    if tier is Tier.FULL and not policy.rw_paths:
        return Control(
            "disk_cap",
            "on",
            f"nothing writable on host disks; the private /tmp is a "
            f"{policy.tmp_size_bytes // _MIB} MiB tmpfs",
        )
    return Control("disk_cap", "off", "the supervisor did not report its disk watch")


def describe(
    policy: Policy,
    tier: Tier,
    support: HostSupport,
    read_back: Mapping[str, Any],
    host_ns: Mapping[str, int],
) -> Posture:
    """The posture of one job from its pre-exec read-back (``read_back`` may be empty)."""
    status: Mapping[str, int] = read_back.get("status", {})
    ns: Mapping[str, int] = read_back.get("ns", {})
    controls = _namespaces(tier, policy, ns, host_ns)
    controls.append(
        Control(
            "filesystem_view",
            "on",
            f"tmpfs root, {len(policy.ro_paths)} ro / "
            f"{len(policy.rw_paths)} rw paths, fresh /proc, minimal /dev, no /sys",
        )
        if tier is Tier.FULL
        else Control("filesystem_view", "off", f"tier {tier}: host view")
    )
    controls.append(_noexec_writable(tier, read_back.get("exec_writable")))
    if tier is Tier.NONE:
        controls.append(Control("seccomp", "off", "tier none"))
    else:
        controls.append(
            Control(
                "seccomp",
                "on" if status.get("seccomp") == 2 else "off",
                f"Seccomp: {status.get('seccomp')} read back",
            )
        )
    controls.append(
        Control(
            "no_new_privs",
            "on" if status.get("no_new_privs") == 1 else "off",
            f"NoNewPrivs: {status.get('no_new_privs')} read back",
        )
    )
    bounding = "empty" if status.get("cap_bnd") == 0 else "kept (no CAP_SETPCAP; NNP holds)"
    controls.append(
        Control(
            "capabilities",
            "on" if status.get("cap_eff") == 0 else "off",
            f"CapEff {status.get('cap_eff', -1):#x}, bounding set {bounding}",
        )
    )
    controls += _landlock(tier, policy, support.landlock_abi, read_back.get("landlock", {}))
    controls.append(
        egress_control(
            tier,
            network=policy.network,
            egress=policy.egress,
            connect_ports=policy.tcp_connect_ports,
        )
    )
    rl = read_back.get("rlimits", {})
    text = ", ".join(f"{k}={v}" for k, v in sorted(rl.items())) or "none"
    if "processes" in rl and read_back.get("job_host_uid") == 0:
        text += " (processes does not bind host uid 0: kernel/fork.c exempts it)"
    elif "processes" in rl and tier is not Tier.FULL:
        # No user namespace: RLIMIT_NPROC counts every process of the job's host uid.
        uid = status.get("uid", read_back.get("job_host_uid"))
        text += f" (processes counts every process of host uid {uid}, the job's real uid)"
    controls.append(Control("rlimits", "on" if rl else "off", text))
    if tier is Tier.FULL:
        cap = read_back.get("pid_cap")
        controls.append(
            Control(
                "pid_cap",
                "on" if cap else "unavailable",
                f"pid_max {cap} in the sandbox's pid namespace"
                if cap
                else "pid_max is not per pid namespace on this kernel (< 6.14)",
            )
        )
    controls.append(_disk_cap(tier, policy, read_back.get("disk_cap")))
    controls.append(
        Control(
            "cgroup_limits",
            "on" if support.cgroup.available else "unavailable",
            support.cgroup.detail,
        )
    )
    # Requested and effective are equal by construction: a tier that cannot hold is refused.
    return Posture(
        str(tier), str(tier), policy.name, tuple(controls), {**read_back, "host_ns": dict(host_ns)}
    )

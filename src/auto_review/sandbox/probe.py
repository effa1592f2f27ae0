"""Probe: which isolation tier this host supports, decided before any sandbox is built.

| tier       | needs                                  | gives                                    |
| full       | unprivileged user namespaces, seccomp  | namespaces + seccomp + Landlock (if any) |
|            |                                        | + rlimits (+ cgroup limits if delegated) |
| restricted | seccomp, Landlock ABI >= 4             | Landlock fs/TCP + seccomp + rlimits      |
| none       | nothing (only when asked explicitly)   | application-level controls only          |

Invariant: ``require_tier`` either returns host support that holds the requested tier, or
raises ``KernelFeatureMissing`` naming the missing feature and the fix; it never downgrades.
Namespace and seccomp checks run in a forked child (they change the caller irreversibly).
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from auto_review.sandbox import kernel, landlock, limits, mounts, namespaces, seccomp
from auto_review.sandbox._syscalls import ARCH
from auto_review.sandbox.errors import KernelFeatureMissing, SandboxError

__all__ = [
    "RESTRICTED_MIN_LANDLOCK_ABI",
    "Feature",
    "HostSupport",
    "Tier",
    "probe_host",
    "require_tier",
]

RESTRICTED_MIN_LANDLOCK_ABI = 4  # TCP port rules; without them a restricted job could connect


class Tier(StrEnum):
    """Isolation tiers, strongest first."""

    FULL = "full"
    RESTRICTED = "restricted"
    NONE = "none"


@dataclass(frozen=True)
class Feature:
    """One kernel feature: whether it works here, what was seen, and how to get it."""

    available: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class HostSupport:
    """What this host supports, as measured by ``probe_host``."""

    user_namespaces: Feature
    seccomp: Feature
    landlock_abi: int
    cgroup: Feature

    @property
    def best_tier(self) -> Tier:
        """The strongest tier that holds here."""
        if self.user_namespaces.available and self.seccomp.available:
            return Tier.FULL
        if self.seccomp.available and self.landlock_abi >= RESTRICTED_MIN_LANDLOCK_ABI:
            return Tier.RESTRICTED
        return Tier.NONE

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["best_tier"] = str(self.best_tier)
        return data


def _child_probe(write_fd: int) -> None:
    """In a forked child: try the namespace steps and a real filter; report; never return."""
    result: dict[str, Any] = {}
    try:
        try:
            namespaces.enter_namespaces(
                namespaces.namespace_flags(network=False), os.getuid(), os.getgid()
            )
            mounts.make_mounts_private()
            # /tmp of a private mount namespace: invisible to the host.
            scratch = "/tmp"  # noqa: S108
            kernel.mount("tmpfs", scratch, "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV, "size=4k")
            result["userns"] = {"available": True, "detail": "user, mount, pid, ipc, uts, net ok"}
        except KernelFeatureMissing as exc:
            result["userns"] = {"available": False, "detail": exc.message, "fix": exc.fix}
        except SandboxError as exc:
            code = getattr(exc, "errno", None) or errno.EPERM
            diag = namespaces.diagnose_map_errno("tmpfs mount in the new namespace", code)
            result["userns"] = {"available": False, "detail": diag.message, "fix": diag.fix}
        try:
            limits.set_no_new_privs()
            seccomp.install(seccomp.assemble(seccomp.build_filter(seccomp.NO_NETWORK_FAMILIES)))
            result["seccomp"] = {"available": True, "detail": f"filter mode ({ARCH})"}
        except (SandboxError, ValueError) as exc:
            detail = exc.message if isinstance(exc, SandboxError) else str(exc)
            result["seccomp"] = {
                "available": False,
                "detail": detail,
                "fix": "a kernel with CONFIG_SECCOMP_FILTER on x86_64 or aarch64",
            }
        os.write(write_fd, json.dumps(result).encode())
    finally:
        os._exit(0)


def probe_host() -> HostSupport:
    """Measure this host (forks one short-lived child)."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_fd)
            _child_probe(write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    raw: dict[str, Any] = json.loads(b"".join(chunks) or b"{}")
    lost = {"available": False, "detail": "the probe child died", "fix": "see the kernel log"}
    abi = landlock.abi_version()
    cg = limits.cgroup_support()
    return HostSupport(
        user_namespaces=Feature(**raw.get("userns", lost)),
        seccomp=Feature(**raw.get("seccomp", lost)),
        landlock_abi=abi,
        cgroup=Feature(cg.available, cg.reason, "" if cg.available else "systemd Delegate=yes"),
    )


def require_tier(requested: Tier, support: HostSupport | None = None) -> HostSupport:
    """Return host support if ``requested`` holds here; else raise KernelFeatureMissing."""
    support = support or probe_host()
    if requested is Tier.NONE:
        return support
    if not support.seccomp.available:
        raise KernelFeatureMissing(
            "seccomp filtering", support.seccomp.fix, detail=support.seccomp.detail
        )
    if requested is Tier.FULL and not support.user_namespaces.available:
        raise KernelFeatureMissing(
            "unprivileged user namespaces",
            support.user_namespaces.fix,
            detail=support.user_namespaces.detail,
        )
    if requested is Tier.RESTRICTED and support.landlock_abi < RESTRICTED_MIN_LANDLOCK_ABI:
        raise KernelFeatureMissing(
            f"Landlock ABI >= {RESTRICTED_MIN_LANDLOCK_ABI}",
            "Linux 6.7+ with Landlock in the lsm= boot list (CONFIG_SECURITY_LANDLOCK=y)",
            detail=f"this kernel offers ABI {support.landlock_abi}",
        )
    return support

"""Resource limits and process hygiene, one step per function, each closing one attack.

Once the steps of a job have run: rlimits cap CPU, address space, file size, open files and
processes, and core dumps are off; no_new_privs is set; every capability is gone (effective,
permitted, inheritable, ambient, and the bounding set when we hold CAP_SETPCAP). cgroup v2
limits are used only when a delegated, writable subtree with the memory and pids controllers
exists; otherwise ``cgroup_support`` says why not, and nothing pretends otherwise.

Out of scope: the wall-clock deadline and the disk cap (``disk_bytes``: the supervisor
enforces both, see _child.py and diskcap.py) and fd/env hygiene (spawn.py builds both from
explicit allowlists).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import resource
from dataclasses import dataclass

from auto_review.sandbox import kernel
from auto_review.sandbox.errors import SandboxPolicyInvalid, SandboxSyscallError

__all__ = [
    "CgroupSupport",
    "Limits",
    "apply_rlimits",
    "cgroup_support",
    "close_fds_except",
    "drop_capabilities",
    "join_cgroup",
    "set_no_new_privs",
]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-process rlimits, and the job's disk cap; ``None`` leaves a limit as inherited
    (``disk_bytes`` None: no cap on what the job adds to its writable places)."""

    cpu_seconds: int | None = 300
    address_space_bytes: int | None = 2048 * _MIB
    file_size_bytes: int | None = 1024 * _MIB
    open_files: int = 1024
    processes: int | None = 512
    # Not an rlimit: the supervisor stops the job when its writable places grew past this
    # (diskcap.py). Twice the file-size cap: RLIMIT_FSIZE bounds one file, this bounds the sum.
    disk_bytes: int | None = 2048 * _MIB

    def __post_init__(self) -> None:
        # closes: a negative limit from a subverted gateway passing the job server's
        # min(requested, default) clamp and reaching setrlimit as -1, i.e. RLIM_INFINITY.
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None and item.name != "open_files":
                continue
            if type(value) is not int or value < 0:
                got = "a negative number" if type(value) is int else type(value).__name__
                raise SandboxPolicyInvalid(
                    f"limit {item.name} must be a non-negative integer, not {got}"
                )

    def with_memory(self, memory_bytes: int | None) -> Limits:
        """The same limits with a different address-space cap (``None`` keeps the default)."""
        if memory_bytes is None:
            return self
        return dataclasses.replace(self, address_space_bytes=memory_bytes)


def apply_rlimits(limits: Limits, *, extra_processes: int = 0) -> dict[str, int]:
    """Set the rlimits (soft = hard, so the job cannot raise them) and return them read back.

    ``extra_processes`` widens RLIMIT_NPROC by the processes the (host) uid already runs: the
    limit counts every process of the real uid in the user namespace, which without a private
    user namespace is the whole host (setrlimit(2)).
    """
    wanted: list[tuple[str, int, int | None]] = [
        ("core", resource.RLIMIT_CORE, 0),  # closes: memory images (secrets) dumped to disk
        ("cpu", resource.RLIMIT_CPU, limits.cpu_seconds),  # closes: CPU spin
        ("address_space", resource.RLIMIT_AS, limits.address_space_bytes),  # memory bomb
        ("file_size", resource.RLIMIT_FSIZE, limits.file_size_bytes),  # disk fill (SIGXFSZ)
        ("open_files", resource.RLIMIT_NOFILE, limits.open_files),  # fd exhaustion
    ]
    if limits.processes is not None:  # closes: fork bomb
        wanted.append(("processes", resource.RLIMIT_NPROC, limits.processes + extra_processes))
    applied: dict[str, int] = {}
    for name, which, wanted_value in wanted:
        if wanted_value is None:
            continue
        value, hard = wanted_value, resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (OSError, ValueError) as exc:
            code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EPERM
            raise SandboxSyscallError(f"setrlimit({name})", code) from None
        applied[name] = resource.getrlimit(which)[0]
    return applied


def set_no_new_privs() -> None:
    """closes: setuid/setgid binaries and file capabilities raising privileges after execve."""
    kernel.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
    if kernel.prctl(kernel.PR_GET_NO_NEW_PRIVS) != 1:  # read back what we set
        raise SandboxSyscallError("prctl(PR_GET_NO_NEW_PRIVS)", errno.EPERM)


def drop_capabilities(last_cap: int) -> bool:
    """closes: any capability (even namespaced) surviving into the job. Returns whether the
    bounding set was dropped too. ``last_cap`` is kernel.last_capability(), read before
    Landlock hides /proc/sys."""
    kernel.prctl(kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_CLEAR_ALL)
    bounding = True
    for cap in range(last_cap + 1):
        try:
            kernel.prctl(kernel.PR_CAPBSET_DROP, cap)
        except SandboxSyscallError as exc:
            # EPERM: we lack CAP_SETPCAP (restricted tier as an ordinary user). The bounding
            # set then only limits what execve could *add*, and no_new_privs (set before this)
            # already forbids adding anything (prctl(2) PR_SET_NO_NEW_PRIVS).
            if exc.errno != errno.EPERM:
                raise
            if kernel.prctl(kernel.PR_CAPBSET_READ, cap) == 0:
                continue  # already out of the set (identity.become_host_user dropped it as root)
            bounding = False
            break
    kernel.capset_clear()
    if kernel.capget() != (0, 0, 0):  # read back what we set
        raise SandboxSyscallError("capset", errno.EPERM)
    return bounding


def close_fds_except(keep: set[int]) -> None:
    """closes: inherited descriptors reaching host files or sockets (runc CVE-2024-21626)."""
    low = 0
    for fd in sorted(keep | {-1}):
        if fd < 0:
            continue
        if fd > low:
            kernel.close_range(low, fd - 1)
        low = fd + 1
    kernel.close_range(low, 0xFFFFFFFF)


@dataclass(frozen=True)
class CgroupSupport:
    """Whether per-job cgroup v2 limits can be set here, and why not when they cannot."""

    available: bool
    reason: str
    path: str = ""


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return left.split(" ")[4].replace("\\040", " ")
    return None


def cgroup_support() -> CgroupSupport:
    """Find a delegated cgroup v2 subtree with memory and pids enabled for children."""
    try:
        mount = _cgroup2_mount()
        if mount is None:
            return CgroupSupport(False, "no cgroup v2 hierarchy is mounted")
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            rel = next((ln.strip()[3:] for ln in fh if ln.startswith("0::")), None)
        if rel is None:
            return CgroupSupport(False, "this process is not in the cgroup v2 hierarchy")
        path = os.path.join(mount, rel.lstrip("/"))
        with open(os.path.join(path, "cgroup.subtree_control"), encoding="ascii") as fh:
            enabled = set(fh.read().split())
    except OSError as exc:
        return CgroupSupport(False, f"cgroup v2 state unreadable: {exc.strerror}")
    missing = sorted({"memory", "pids"} - enabled)
    if missing:
        return CgroupSupport(
            False,
            f"controllers {', '.join(missing)} are not delegated to {path} (cgroup.subtree_control"
            f" has {', '.join(sorted(enabled)) or 'nothing'}); run under systemd with Delegate=yes",
            path,
        )
    if not os.access(path, os.W_OK):
        return CgroupSupport(False, f"{path} is not writable by this user (no delegation)", path)
    return CgroupSupport(True, f"delegated subtree {path}", path)


def join_cgroup(parent: str, name: str, memory_bytes: int | None, pids: int | None) -> str:
    """Create ``parent/name`` with memory.max and pids.max and move the caller into it."""
    path = os.path.join(parent, name)
    try:
        os.mkdir(path, 0o755)
        if memory_bytes is not None:
            _write(os.path.join(path, "memory.max"), str(memory_bytes))
            swap = os.path.join(path, "memory.swap.max")
            if os.path.exists(swap):  # absent without swap accounting
                _write(swap, "0")
        if pids is not None:
            _write(os.path.join(path, "pids.max"), str(pids))
        _write(os.path.join(path, "cgroup.procs"), "0")
    except OSError as exc:
        raise SandboxSyscallError("cgroup setup", exc.errno or errno.EIO, path=path) from None
    return path


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)

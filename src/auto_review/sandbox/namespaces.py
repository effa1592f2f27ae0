"""Namespaces: enter new user, mount, pid, ipc, uts, cgroup (and net) namespaces, map one id.

Once ``enter_namespaces`` returns, the caller (a freshly forked, single-threaded process) is
alone in a new user namespace where its host uid/gid appear as ``SANDBOX_ID`` and setgroups is
denied (closes: dropping supplementary groups to bypass negative group permissions,
CVE-2014-8989); in new mount/ipc/uts/cgroup namespaces; its *children* go into a new pid
namespace; without network it is also in an empty network namespace whose loopback is up.
Works when started as root and as an ordinary user (only one id is ever mapped).

Out of scope: the file-system view (mounts.py) and dropping the namespaced capabilities the
creator holds (limits.py, right before exec). ``diagnose_userns_errno`` turns a failure into
the cause and the fix, for probe.py and spawn.py alike.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Final

from auto_review.sandbox import kernel
from auto_review.sandbox.errors import KernelFeatureMissing, SandboxSyscallError

__all__ = [
    "NAMESPACES",
    "ROOT_JOB_HOST_ID",
    "SANDBOX_HOSTNAME",
    "SANDBOX_ID",
    "become",
    "become_sandbox_user",
    "diagnose_map_errno",
    "diagnose_userns_errno",
    "enter_namespaces",
    "idmap_userns_fd",
    "map_user_namespace",
    "namespace_flags",
    "shared_idmap_fd",
]

# The uid and gid the job sees; a fixed ordinary id so that tools do not think they are root.
SANDBOX_ID: Final = 1000
SANDBOX_HOSTNAME: Final = "auto-review-sandbox"
NAMESPACES: Final = ("user", "mnt", "pid", "ipc", "uts", "cgroup", "net")
# Started by root, the job must not be host uid 0 (kernel/fork.c exempts INIT_USER from
# RLIMIT_NPROC, and DAC would give it every root-owned file in a writable bind): it runs as
# nobody/nogroup on the host, and writable binds are id-mapped so root-owned content is its own.
ROOT_JOB_HOST_ID: Final = 65534


def namespace_flags(network: bool) -> int:
    """CLONE_NEW* flags for a job: all of them, and the network too unless it needs one."""
    flags = (
        kernel.CLONE_NEWUSER
        | kernel.CLONE_NEWNS
        | kernel.CLONE_NEWPID
        | kernel.CLONE_NEWIPC
        | kernel.CLONE_NEWUTS
        | kernel.CLONE_NEWCGROUP
    )
    return flags if network else flags | kernel.CLONE_NEWNET


def _sysctl(name: str) -> str | None:
    try:
        with open(f"/proc/sys/{name.replace('.', '/')}", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def diagnose_userns_errno(code: int) -> KernelFeatureMissing:
    """Why ``unshare(CLONE_NEWUSER)`` failed with ``code``, and how to fix it."""
    feature = "unprivileged user namespaces"
    if code == errno.EPERM:
        if _sysctl("kernel.unprivileged_userns_clone") == "0":
            return KernelFeatureMissing(
                feature,
                "sysctl -w kernel.unprivileged_userns_clone=1, or --isolation restricted",
                detail="disabled by kernel.unprivileged_userns_clone=0 (EPERM)",
            )
        return KernelFeatureMissing(
            feature,
            "allow user namespaces (container seccomp profile or sysctl), "
            "or --isolation restricted",
            detail="unshare(CLONE_NEWUSER) was refused (EPERM): disabled by sysctl or by a "
            "seccomp policy of an enclosing container",
        )
    if code in (errno.ENOSPC, errno.EUSERS):
        return KernelFeatureMissing(
            feature,
            "sysctl -w user.max_user_namespaces=15000, or --isolation restricted",
            detail=f"user.max_user_namespaces is {_sysctl('user.max_user_namespaces') or '0'} or "
            "its limit is reached (ENOSPC)",
        )
    if code == errno.EINVAL:
        return KernelFeatureMissing(
            feature,
            "create sandboxes from a single-threaded process (fork before threads)",
            detail="the calling process is multithreaded (EINVAL)",
        )
    return KernelFeatureMissing(
        feature,
        "check the kernel's user-namespace support, or --isolation restricted",
        detail=f"unshare(CLONE_NEWUSER) failed: {errno.errorcode.get(code, code)}",
    )


def diagnose_map_errno(step: str, code: int) -> KernelFeatureMissing:
    """Why a step *after* a successful unshare failed (AppArmor's userns restriction)."""
    if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1" or code == errno.EPERM:
        return KernelFeatureMissing(
            "capabilities inside a new user namespace",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile "
            "that allows userns for auto-review, or --isolation restricted",
            detail=f"{step} failed with {errno.errorcode.get(code, code)} after unshare succeeded"
            " (AppArmor's unprivileged_userns restriction behaves like this)",
        )
    return KernelFeatureMissing(
        "user namespace id mapping",
        "check /proc/self/uid_map support",
        detail=f"{step} failed with {errno.errorcode.get(code, code)}",
    )


def _write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise diagnose_map_errno(f"write {path}", exc.errno or errno.EIO) from None


def enter_namespaces(flags: int, outer_uid: int, outer_gid: int) -> None:
    """unshare; with CLONE_NEWUSER map ``outer_uid/gid`` to SANDBOX_ID; set the hostname and
    bring loopback up in new UTS/net namespaces."""
    try:
        kernel.unshare(flags)
    except SandboxSyscallError as exc:
        if flags & kernel.CLONE_NEWUSER:
            raise diagnose_userns_errno(exc.errno) from None
        raise
    if flags & kernel.CLONE_NEWUSER:
        # setgroups must be denied before an unprivileged gid_map write (user_namespaces(7)).
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{SANDBOX_ID} {outer_uid} 1\n")
        _write("/proc/self/gid_map", f"{SANDBOX_ID} {outer_gid} 1\n")
    if flags & kernel.CLONE_NEWUTS:
        try:  # closes: the job learning or changing the host's name
            kernel.sethostname(SANDBOX_HOSTNAME)
        except SandboxSyscallError as exc:
            raise diagnose_map_errno("sethostname", exc.errno) from None
    if flags & kernel.CLONE_NEWNET:
        try:  # lo up so local tools work; there is no other interface (closes: egress)
            kernel.set_loopback_up()
        except SandboxSyscallError as exc:
            raise diagnose_map_errno(
                "bringing loopback up (RTM_NEWADDR class)", exc.errno
            ) from None


def map_user_namespace(pid: int, host_id: int) -> None:
    """From the parent user namespace (as root): map SANDBOX_ID to ``host_id`` for ``pid``."""
    _write(f"/proc/{pid}/uid_map", f"{SANDBOX_ID} {host_id} 1\n")
    _write(f"/proc/{pid}/gid_map", f"{SANDBOX_ID} {host_id} 1\n")


def become_sandbox_user() -> None:
    """In a freshly mapped user namespace: drop supplementary groups, become SANDBOX_ID."""
    become(SANDBOX_ID, "setresuid(sandbox user)")


def become(ident: int, step: str) -> None:
    """Drop supplementary groups and set every uid and gid to ``ident``, read back."""
    try:
        os.setgroups([])  # closes: root's supplementary groups granting group access
        os.setresgid(ident, ident, ident)
        os.setresuid(ident, ident, ident)
    except OSError as exc:
        raise SandboxSyscallError(step, exc.errno or errno.EPERM) from None
    if os.getresuid() != (ident,) * 3 or os.getresgid() != (ident,) * 3 or os.getgroups():
        raise SandboxSyscallError(step, errno.EPERM)


_IDMAP_FDS: dict[tuple[int, int], int] = {}
_IDMAP_LOCK = threading.Lock()


def shared_idmap_fd(host_id: int) -> int:
    """``idmap_userns_fd(host_id)`` made once per process (the namespace never changes)."""
    key = (os.getpid(), host_id)
    with _IDMAP_LOCK:
        if key not in _IDMAP_FDS:
            _IDMAP_FDS[key] = idmap_userns_fd(host_id)
        return _IDMAP_FDS[key]


def idmap_userns_fd(host_id: int) -> int:
    """A user-namespace fd mapping uid/gid 0 to ``host_id`` (for id-mapped writable binds).

    A helper child creates the namespace and waits; we (root, same pid namespace) write its
    maps and open its ns file; then it exits. Returns an O_CLOEXEC fd."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - helper child
        try:
            os.close(ready_r)
            os.close(hold_w)
            kernel.unshare(kernel.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise SandboxSyscallError("unshare(idmap helper)", errno.EPERM)
        for name in ("uid_map", "gid_map"):
            _write(f"/proc/{pid}/{name}", f"0 {host_id} 1\n")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)

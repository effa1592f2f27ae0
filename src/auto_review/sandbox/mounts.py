"""The file-system view of a full-tier sandbox, built like bubblewrap's setup_newroot.

Once ``stage_root`` (in the process that owns new user and mount namespaces) and then
``enter_root`` (in pid 1 of the new pid namespace, a child sharing the mount namespace) return: the
root is a small read-only tmpfs holding only the listed host paths, bound at their own paths,
read-only or writable as planned, all nosuid,nodev; a fresh /proc of the new pid namespace with
Docker's sensitive entries masked; a /dev with null, zero, full, random and urandom only; a
private, size-limited, noexec /tmp; no /sys; and no trace of the host root (it is detached).

Out of scope: which paths are listed (policy.py) and what the job may do inside them
(landlock.py). Every step raises ``SandboxSetupError`` carrying step, path and errno.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from auto_review.sandbox import kernel
from auto_review.sandbox.errors import SandboxSetupError, SandboxSyscallError

__all__ = ["DEVICES", "View", "enter_root", "plan_view", "stage_root"]

_STAGE: Final = "/tmp"  # noqa: S108 - host /tmp is hidden only until the first pivot, like bubblewrap
_OLD: Final = "/oldroot"
_NEW: Final = "/newroot"
# Room for mount points and symlinks only; nothing else is ever written to the root.
_ROOT_TMPFS: Final = "size=4m,nr_inodes=4096,mode=0755"
DEVICES: Final = ("null", "zero", "full", "random", "urandom")
_PID_MAX_MIN: Final = 301  # the kernel's floor for pid_max (RESERVED_PIDS + 1)
# Docker's masked and read-only /proc paths (moby daemon/pkg/oci/defaults.go).
_PROC_MASK_FILES: Final = (
    "interrupts",
    "kcore",
    "keys",
    "latency_stats",
    "sched_debug",
    "timer_list",
    "timer_stats",
)
_PROC_MASK_DIRS: Final = ("acpi", "asound", "scsi")
_PROC_READ_ONLY: Final = ("bus", "fs", "irq", "sys", "sysrq-trigger")
# statvfs ST_* bit -> MS_* bit. A remount in a user namespace must keep the flags the host
# mount has (the kernel locks them, MNT_LOCK_*), or it fails with EPERM.
_LOCKED_FLAGS: Final = (
    (os.ST_RDONLY, kernel.MS_RDONLY),
    (os.ST_NOSUID, kernel.MS_NOSUID),
    (os.ST_NODEV, kernel.MS_NODEV),
    (os.ST_NOEXEC, kernel.MS_NOEXEC),
    (os.ST_NOATIME, 1024),  # MS_NOATIME
    (os.ST_NODIRATIME, 2048),  # MS_NODIRATIME
    (os.ST_RELATIME, 1 << 21),  # MS_RELATIME
)


@dataclass(frozen=True)
class View:
    """Host paths to bind (resolved, with their mode) and symlinks to recreate verbatim."""

    binds: tuple[tuple[str, bool, bool], ...]  # (path, writable, strict: follow no symlink)
    links: tuple[tuple[str, str], ...]  # (path, target)
    # Read-only binds to id-map too: a root-started job is host nobody, and a one-file build's
    # unpacked dir is root-only (0700); mapped, it is readable, and still read-only.
    idmapped_ro: tuple[str, ...] = ()


def _resolve(path: str, links: dict[str, str]) -> str | None:
    """Resolve ``path`` component by component, recording every symlink met on the way."""
    resolved = "/"
    parts = [p for p in path.split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = os.path.join(resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:  # ELOOP, as the kernel would say
                return None
            target = os.readlink(candidate)
            links.setdefault(candidate, target)
            base = "/" if target.startswith("/") else resolved
            parts = [
                p for p in os.path.normpath(os.path.join(base, target)).split("/") if p
            ] + parts
            resolved = "/"
            continue
        if not os.path.lexists(candidate):
            return None
        resolved = candidate
    return resolved


def plan_view(
    ro: tuple[str, ...], rw: tuple[str, ...], trusted: frozenset[str] = frozenset()
) -> View:
    """Resolve the policy's paths into binds (missing ones dropped) and symlinks to recreate.

    Only ``trusted`` paths (system and interpreter views) have their symlinks followed; every
    other path is bound strictly, as given, and the bind refuses a symlink anywhere in it."""
    links: dict[str, str] = {}
    binds: dict[str, tuple[bool, bool]] = {}
    for paths, writable in ((ro, False), (rw, True)):
        for path in paths:
            strict = path not in trusted
            real = path if strict else _resolve(path, links)
            if strict and not os.path.lexists(path):
                real = None
            if real is not None and real != "/":
                was_writable, was_strict = binds.get(real, (False, False))
                binds[real] = (writable or was_writable, strict or was_strict)
    ordered = sorted(binds.items(), key=lambda item: (item[0].count("/"), item[0]))
    return View(
        binds=tuple((path, w, s) for path, (w, s) in ordered),
        links=tuple(sorted(links.items())),
    )


@contextmanager
def _step(step: str, path: str) -> Iterator[None]:
    try:
        yield
    except SandboxSyscallError as exc:
        raise SandboxSetupError(
            f"{step} {path}: {exc.message}", step=step, path=path, errno=exc.errno
        ) from None
    except OSError as exc:
        raise SandboxSetupError(
            f"{step} {path}: {exc.strerror}", step=step, path=path, errno=exc.errno or errno.EIO
        ) from None


@contextmanager
def _modes_as_written() -> Iterator[None]:
    """The mount points get the modes written here, whatever the caller's umask. A service
    manager's UMask=0077 (the shipped systemd unit's) would make them 0700, and in a
    root-started sandbox they belong to its root, not to its job (uid 1000 there): the job could
    not reach /etc, /usr or /proc. The caller's umask is back before the job runs."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mountpoint(target: str, is_dir: bool) -> None:
    os.makedirs(target if is_dir else os.path.dirname(target), mode=0o755, exist_ok=True)
    if not is_dir and not os.path.exists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


# Mount points under /oldroot: read at most once per build_root, and only by the remount
# fallback of kernels without mount_setattr (reading mountinfo costs ~0.3 ms, F3).
_HOST_MOUNTS: dict[str, list[str]] = {}  # {"points": [...]} once read


def _read_host_mounts() -> list[str]:
    # After the first pivot the host /proc is only reachable under /oldroot.
    with open(_OLD + "/proc/self/mountinfo", encoding="utf-8") as fh:
        points = [_unescape(line.split(" ")[4]) for line in fh]
    return [p for p in points if p.startswith(_OLD + "/")]


def _submounts(path: str) -> list[str]:
    """Where the host mounts below ``path`` appear in the new root after a recursive bind."""
    if "points" not in _HOST_MOUNTS:
        _HOST_MOUNTS["points"] = _read_host_mounts()
    prefix = _OLD + path.rstrip("/") + "/"
    points = _HOST_MOUNTS["points"]
    return [_NEW + point[len(_OLD) :] for point in points if point.startswith(prefix)]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (proc_pid_mountinfo(5))."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _remount(target: str, extra: int) -> None:
    f_flag = os.statvfs(target).f_flag
    locked = 0
    for st_bit, ms_bit in _LOCKED_FLAGS:
        if f_flag & st_bit:
            locked |= ms_bit
    kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_BIND | locked | extra, None)


def make_mounts_private() -> None:
    """closes: our mounts propagating back into the host's mount namespace."""
    with _step("make-private", "/"):
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE, None)


def pivot_into_staging() -> None:
    """closes: nothing yet; puts the host root at /oldroot so every bind names its source."""
    with _step("stage-root", _STAGE):
        kernel.mount("tmpfs", _STAGE, "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV, _ROOT_TMPFS)
        os.mkdir(_STAGE + _OLD, 0o755)
        kernel.pivot_root(_STAGE, _STAGE + _OLD)
        os.chdir("/")
    with _step("new-root", _NEW):
        os.mkdir(_NEW, 0o755)
        kernel.mount("tmpfs", _NEW, "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV, _ROOT_TMPFS)


def bind_path(
    path: str,
    writable: bool,
    idmap_fd: int | None = None,
    strict: bool = False,
    idmap_ro: bool = False,
) -> None:
    """closes: over-mounted host paths (only listed paths appear), setuid binaries and device
    nodes in binds (nosuid,nodev), writes to read-only paths (ro, also on submounts), and with
    ``strict`` a symlink planted in a job path leading the bind elsewhere: the source is opened
    with openat2(RESOLVE_NO_SYMLINKS) and the opened object is what gets bound (CVE-2021-30465).
    With ``idmap_fd`` a writable bind is id-mapped (host root's files become the job's)."""
    target = _NEW + path
    with _step("bind", path):
        held = _open_strict(path) if strict else None
        try:
            source = f"{_OLD}/proc/self/fd/{held}" if held is not None else _OLD + path
            is_dir = stat.S_ISDIR(os.fstat(held).st_mode) if held is not None else None
            _mountpoint(target, os.path.isdir(source) if is_dir is None else is_dir)
            attrs = kernel.MOUNT_ATTR_NOSUID | kernel.MOUNT_ATTR_NODEV
            attrs |= kernel.MOUNT_ATTR_NOEXEC if writable else kernel.MOUNT_ATTR_RDONLY
            mapped = (writable or idmap_ro) and idmap_fd is not None
            if mapped and _bind_tree(source, target, attrs, idmap_fd):
                return
            # The flags are set on the whole cloned tree before it is attached, so no submount
            # is ever visible writable, and no mountinfo needs reading (F3).
            if _bind_tree(source, target, attrs, None):
                return
            kernel.mount(source, target, None, kernel.MS_BIND | kernel.MS_REC, None)
        finally:
            if held is not None:
                os.close(held)
        # Kernels before 5.12 (no mount_setattr): remount the bind and each submount found.
        flags = kernel.MS_NOSUID | kernel.MS_NODEV
        flags |= kernel.MS_NOEXEC if writable else kernel.MS_RDONLY
        for point in [target, *_submounts(path)]:
            _remount(point, flags)


def _open_strict(path: str) -> int:
    """An O_PATH fd of the host ``path``, refusing symlinks and magic links in every part."""
    return kernel.open_nofollow(path, beneath=_OLD)


def _bind_tree(source: str, target: str, attrs: int, idmap_fd: int | None) -> bool:
    """``kernel.bind_tree``; False when this kernel or file system cannot do it."""
    try:
        kernel.bind_tree(source, target, attrs, idmap_fd)
    except SandboxSyscallError as exc:
        # ENOSYS: no new mount API (before 5.2) or no mount_setattr (before 5.12). With an id
        # map also EINVAL/EOPNOTSUPP: this file system cannot be id-mapped (e.g. tmpfs before
        # 6.3); a plain bind follows, where the job writes only what nobody may write.
        tolerated = (
            (errno.ENOSYS,) if idmap_fd is None else (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS)
        )
        if exc.errno in tolerated:
            return False
        raise
    return True


def recreate_link(path: str, target: str) -> None:
    """closes: nothing; keeps /bin -> usr/bin style links working in the new root."""
    with _step("symlink", path):
        where = _NEW + path
        if not os.path.lexists(where):
            os.makedirs(os.path.dirname(where), mode=0o755, exist_ok=True)
            os.symlink(target, where)


def mount_minimal_dev() -> None:
    """closes: raw disks, /dev/mem, ttys and other host devices (only five safe nodes)."""
    dev = _NEW + "/dev"
    with _step("dev", dev):
        os.mkdir(dev, 0o755)
        kernel.mount(
            "tmpfs", dev, "tmpfs", kernel.MS_NOSUID | kernel.MS_NOEXEC, "size=64k,mode=0755"
        )
        for name in DEVICES:
            _mountpoint(f"{dev}/{name}", is_dir=False)
            kernel.mount(f"{_OLD}/dev/{name}", f"{dev}/{name}", None, kernel.MS_BIND, None)
        for name, target in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ):
            os.symlink(target, f"{dev}/{name}")
        kernel.mount(
            None,
            dev,
            None,
            kernel.MS_REMOUNT | kernel.MS_RDONLY | kernel.MS_NOSUID | kernel.MS_NOEXEC,
            "size=64k,mode=0755",
        )


def cap_pid_count(proc: str, processes: int) -> int | None:
    """closes: fork bombs by host root, whom RLIMIT_NPROC never binds (kernel/fork.c exempts
    INIT_USER): pid_max of our own pid namespace (per namespace since Linux 6.14) bounds how
    many processes can exist. Returns the cap, or None on kernels where pid_max is global."""
    cap = max(processes + 2, _PID_MAX_MIN)
    try:
        with open(f"{proc}/sys/kernel/pid_max", "w", encoding="ascii") as fh:
            fh.write(str(cap))
    except PermissionError:
        # EPERM/EACCES: before 6.14 pid_max is global and needs CAP_SYS_ADMIN on the host.
        return None
    return cap


def mount_fresh_proc(processes: int | None = None) -> int | None:
    """closes: /proc leaking host pids, environments and cmdlines (a proc of our pid ns only),
    and Docker's sensitive entries (kcore, keys, timer_list, sysrq-trigger, /proc/sys writes).
    Returns the pid cap set on the way (see ``cap_pid_count``)."""
    proc = _NEW + "/proc"
    pid_cap = None
    with _step("proc", proc):
        os.mkdir(proc, 0o555)
        # Must happen while the host /proc is still visible under /oldroot: the kernel refuses
        # a new proc mount in a user namespace unless one is already fully visible.
        kernel.mount(
            "proc", proc, "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC, None
        )
        if processes is not None:
            pid_cap = cap_pid_count(proc, processes)
        for name in _PROC_MASK_FILES:
            if os.path.exists(f"{proc}/{name}"):
                kernel.mount(f"{_NEW}/dev/null", f"{proc}/{name}", None, kernel.MS_BIND, None)
        for name in _PROC_MASK_DIRS:
            if os.path.isdir(f"{proc}/{name}"):
                kernel.mount("tmpfs", f"{proc}/{name}", "tmpfs", kernel.MS_RDONLY, "size=0")
        for name in _PROC_READ_ONLY:
            if os.path.exists(f"{proc}/{name}"):
                kernel.mount(
                    f"{proc}/{name}", f"{proc}/{name}", None, kernel.MS_BIND | kernel.MS_REC, None
                )
                _remount(f"{proc}/{name}", kernel.MS_RDONLY | kernel.MS_NOSUID | kernel.MS_NODEV)
    return pid_cap


def mount_private_tmp(size_bytes: int) -> None:
    """closes: sharing the host /tmp, filling the host disk (size=), running dropped files."""
    tmp = _NEW + "/tmp"  # noqa: S108 - the sandbox's own tmpfs
    with _step("tmp", tmp):
        os.makedirs(tmp, mode=0o755, exist_ok=True)
        flags = kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC
        kernel.mount("tmpfs", tmp, "tmpfs", flags, f"size={size_bytes},mode=1777")


def detach_old_root() -> None:
    """closes: any path back to the host tree through /oldroot."""
    with _step("detach-old-root", _OLD):
        kernel.mount(None, _OLD, None, kernel.MS_REC | kernel.MS_PRIVATE, None)
        kernel.umount2(_OLD, kernel.MNT_DETACH)


def pivot_into_new_root() -> None:
    """closes: the staging tmpfs staying reachable (pivot_root(".", ".") then detach it)."""
    with _step("pivot-root", _NEW):
        os.chdir(_NEW)
        kernel.pivot_root(".", ".")
        kernel.umount2(".", kernel.MNT_DETACH)
        os.chdir("/")


def remount_root_readonly() -> None:
    """closes: the job creating files in / (the root tmpfs holds only mount points)."""
    with _step("root-readonly", "/"):
        _remount("/", kernel.MS_RDONLY | kernel.MS_NOSUID | kernel.MS_NODEV)


def stage_root(view: View, tmp_size_bytes: int, idmap_fd: int | None = None) -> None:
    """The steps that need no pid namespace of their own, in the outer child: the host root
    moves to /oldroot, and /newroot gets /tmp, the binds, the links and /dev."""
    _HOST_MOUNTS.clear()
    with _modes_as_written():
        make_mounts_private()
        pivot_into_staging()
        mount_private_tmp(tmp_size_bytes)  # first, so binds below /tmp land on top of it
        for path, writable, strict in view.binds:
            bind_path(path, writable, idmap_fd, strict, idmap_ro=path in view.idmapped_ro)
        for path, target in view.links:
            recreate_link(path, target)
        mount_minimal_dev()


def enter_root(processes: int | None = None) -> int | None:
    """The rest, in pid 1 of the new pid namespace (its /proc is the one mounted): fresh /proc,
    old root detached, pivot into /newroot, root read-only. Every process of this mount
    namespace (the outer child too) ends up in the new root. Returns the pid cap of the
    namespace (None when the kernel has no per-namespace pid_max)."""
    with _modes_as_written():
        pid_cap = mount_fresh_proc(processes)
    detach_old_root()
    pivot_into_new_root()
    remount_root_readonly()
    return pid_cap

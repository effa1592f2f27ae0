"""The only place that talks to the kernel directly: thin, checked ctypes wrappers.

Invariants: every wrapper declares argument and return types, tests the return value, reads
errno at once and raises ``SandboxSyscallError(name, errno)``; no other module of the sandbox sees
a raw errno. An errno is tolerated only by name, with the reason beside it. Nothing here decides
policy: callers choose the order and the arguments.

Out of scope: anything a later Python than 3.11 wraps (``os.unshare`` arrived in 3.12).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import fcntl
import os
import socket
import struct
from typing import Any, Final

from auto_review.sandbox._syscalls import NATIVE
from auto_review.sandbox.errors import SandboxSyscallError

__all__ = [
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "MNT_DETACH",
    "MOUNT_ATTR_NODEV",
    "MOUNT_ATTR_NOEXEC",
    "MOUNT_ATTR_NOSUID",
    "MOUNT_ATTR_RDONLY",
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_PRIVATE",
    "MS_RDONLY",
    "MS_REC",
    "MS_REMOUNT",
    "PR_CAPBSET_DROP",
    "PR_CAPBSET_READ",
    "PR_CAP_AMBIENT",
    "PR_CAP_AMBIENT_CLEAR_ALL",
    "PR_GET_NO_NEW_PRIVS",
    "PR_GET_SECCOMP",
    "PR_SET_CHILD_SUBREAPER",
    "PR_SET_DUMPABLE",
    "PR_SET_NO_NEW_PRIVS",
    "PR_SET_PDEATHSIG",
    "RESOLVE_BENEATH",
    "RESOLVE_NO_MAGICLINKS",
    "RESOLVE_NO_SYMLINKS",
    "bind_tree",
    "capget",
    "capset_clear",
    "close_range",
    "fork_single_threaded",
    "landlock_abi_version",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "last_capability",
    "mount",
    "open_nofollow",
    "openat2",
    "pidfd_getfd",
    "pivot_root",
    "prctl",
    "seccomp_set_mode_filter",
    "set_loopback_up",
    "sethostname",
    "setns",
    "umount2",
    "unshare",
]

# <linux/sched.h>
CLONE_NEWNS: Final = 0x00020000
CLONE_NEWCGROUP: Final = 0x02000000
CLONE_NEWUTS: Final = 0x04000000
CLONE_NEWIPC: Final = 0x08000000
CLONE_NEWUSER: Final = 0x10000000
CLONE_NEWPID: Final = 0x20000000
CLONE_NEWNET: Final = 0x40000000

# <linux/mount.h>
MS_RDONLY: Final = 0x1
MS_NOSUID: Final = 0x2
MS_NODEV: Final = 0x4
MS_NOEXEC: Final = 0x8
MS_REMOUNT: Final = 0x20
MS_BIND: Final = 0x1000
MS_REC: Final = 0x4000
MS_PRIVATE: Final = 0x40000
MNT_DETACH: Final = 0x2

# <linux/prctl.h>
PR_SET_PDEATHSIG: Final = 1
PR_SET_DUMPABLE: Final = 4
PR_GET_SECCOMP: Final = 21
PR_CAPBSET_READ: Final = 23
PR_CAPBSET_DROP: Final = 24
PR_SET_CHILD_SUBREAPER: Final = 36
PR_SET_NO_NEW_PRIVS: Final = 38
PR_GET_NO_NEW_PRIVS: Final = 39
PR_CAP_AMBIENT: Final = 47
PR_CAP_AMBIENT_CLEAR_ALL: Final = 4

# <linux/mount.h> new mount API, <fcntl.h>
OPEN_TREE_CLONE: Final = 1
AT_FDCWD: Final = -100
AT_EMPTY_PATH: Final = 0x1000
AT_RECURSIVE: Final = 0x8000
MOVE_MOUNT_F_EMPTY_PATH: Final = 0x4
MOUNT_ATTR_RDONLY: Final = 0x1
MOUNT_ATTR_NOSUID: Final = 0x2
MOUNT_ATTR_NODEV: Final = 0x4
MOUNT_ATTR_NOEXEC: Final = 0x8
MOUNT_ATTR_IDMAP: Final = 0x00100000

# <linux/openat2.h>
RESOLVE_NO_MAGICLINKS: Final = 0x02
RESOLVE_NO_SYMLINKS: Final = 0x04
RESOLVE_BENEATH: Final = 0x08

# <linux/capability.h>
_LINUX_CAPABILITY_VERSION_3: Final = 0x20080522
# <linux/seccomp.h>
_SECCOMP_SET_MODE_FILTER: Final = 1
# <linux/landlock.h>
_LANDLOCK_CREATE_RULESET_VERSION: Final = 1
# <linux/sockios.h>, <net/if.h>
_SIOCGIFFLAGS: Final = 0x8913
_SIOCSIFFLAGS: Final = 0x8914
_IFF_UP: Final = 0x1

_libc = ctypes.CDLL(None, use_errno=True)


def _fn(name: str, restype: type, *argtypes: type) -> Any:
    """A libc function with its prototype declared (ctypes would otherwise guess int)."""
    func = getattr(_libc, name)
    func.restype = restype
    func.argtypes = list(argtypes)
    return func


_c = ctypes
_unshare = _fn("unshare", _c.c_int, _c.c_int)
_setns = _fn("setns", _c.c_int, _c.c_int, _c.c_int)
_mount = _fn("mount", _c.c_int, _c.c_char_p, _c.c_char_p, _c.c_char_p, _c.c_ulong, _c.c_char_p)
_umount2 = _fn("umount2", _c.c_int, _c.c_char_p, _c.c_int)
_sethostname = _fn("sethostname", _c.c_int, _c.c_char_p, _c.c_size_t)
# prctl(2) is variadic in glibc; every option we use takes unsigned longs, passed as such.
_prctl = _fn("prctl", _c.c_int, _c.c_int, _c.c_ulong, _c.c_ulong, _c.c_ulong, _c.c_ulong)
# syscall(2) for calls glibc 2.36 does not wrap: the number, then six long arguments (unused
# ones zero).
_syscall = _fn("syscall", _c.c_long, *[_c.c_long] * 7)


# glibc's fork(2) called *holding* the GIL (a PyDLL function does not release it), so the child
# continues as the thread that holds it, exactly as after os.fork().
_fork = ctypes.PyDLL(None, use_errno=True).fork
_fork.restype = _c.c_int
_fork.argtypes = []


def _check(name: str, ret: int, path: str | None = None) -> int:
    """Raise on a failed call; errno is read before any other foreign call can clobber it."""
    if ret < 0:
        raise SandboxSyscallError(name, ctypes.get_errno(), path=path)
    return ret


def _sys(name: str, *args: int) -> int:
    padded = (list(args) + [0] * 6)[:6]
    return _check(name, _syscall(NATIVE[name], *padded))


def _b(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def unshare(flags: int) -> None:
    """unshare(2): move the caller into new namespaces (single-threaded callers only)."""
    _check("unshare", _unshare(flags))


def setns(fd: int, nstype: int) -> None:
    """setns(2): join the namespace ``fd`` refers to."""
    _check("setns", _setns(fd, nstype))


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    """mount(2)."""
    _check("mount", _mount(_b(source), _b(target), _b(fstype), flags, _b(data)), target)


def umount2(target: str, flags: int) -> None:
    """umount2(2)."""
    _check("umount2", _umount2(_b(target), flags), target)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (no glibc wrapper)."""
    new_b, old_b = ctypes.c_char_p(_b(new_root)), ctypes.c_char_p(_b(put_old))
    ret = _syscall(
        NATIVE["pivot_root"],
        ctypes.cast(new_b, ctypes.c_void_p).value or 0,
        ctypes.cast(old_b, ctypes.c_void_p).value or 0,
        0,
        0,
        0,
        0,
    )
    _check("pivot_root", ret, new_root)


def sethostname(name: str) -> None:
    """sethostname(2) (in a private UTS namespace only)."""
    raw = name.encode()
    _check("sethostname", _sethostname(raw, len(raw)))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2); returns the call's non-negative result."""
    return _check(f"prctl({option})", _prctl(option, arg2, arg3, arg4, arg5))


def last_capability() -> int:
    """The highest capability number this kernel knows (for dropping the whole bounding set)."""
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
        return int(fh.read().strip())


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def capset_clear() -> None:
    """capset(2) with every set empty: effective, permitted and inheritable all zero."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()  # version 3 takes two 32-bit halves; zero-initialised
    _sys("capset", ctypes.addressof(header), ctypes.addressof(data))


def capget() -> tuple[int, int, int]:
    """capget(2) for this thread: (effective, permitted, inheritable) as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _sys("capget", ctypes.addressof(header), ctypes.addressof(data))
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER) with a packed array of ``struct sock_filter``."""
    if len(program) % 8:
        raise ValueError("a BPF program is a whole number of 8-byte instructions")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    _sys("seccomp", _SECCOMP_SET_MODE_FILTER, flags, ctypes.addressof(prog))


def landlock_abi_version() -> int:
    """The Landlock ABI version, or 0 when the kernel lacks or disabled Landlock."""
    try:
        return _sys("landlock_create_ruleset", 0, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    except SandboxSyscallError as exc:
        # ENOSYS: built without CONFIG_SECURITY_LANDLOCK; EOPNOTSUPP: built in but not in the
        # lsm= boot list (Documentation/userspace-api/landlock.rst, "Kernel support").
        if exc.errno in (_errno.ENOSYS, _errno.EOPNOTSUPP):
            return 0
        raise


def landlock_create_ruleset(attr: bytes) -> int:
    """landlock_create_ruleset(2) with a packed ``struct landlock_ruleset_attr``; returns an fd."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    return _sys("landlock_create_ruleset", ctypes.addressof(buf), len(attr), 0)


def landlock_add_rule(ruleset_fd: int, rule_type: int, attr: bytes) -> None:
    """landlock_add_rule(2) with a packed rule attribute (path-beneath or net-port)."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    _sys("landlock_add_rule", ruleset_fd, rule_type, ctypes.addressof(buf), 0)


def landlock_restrict_self(ruleset_fd: int, flags: int = 0) -> None:
    """landlock_restrict_self(2): enforce the ruleset on this thread and its future children."""
    _sys("landlock_restrict_self", ruleset_fd, flags)


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); returns the new fd (``resolve`` takes the RESOLVE_* flags)."""
    how = _OpenHow(flags, mode, resolve)
    raw = ctypes.create_string_buffer(os.fsencode(path))
    try:
        return _sys(
            "openat2", dirfd, ctypes.addressof(raw), ctypes.addressof(how), ctypes.sizeof(how)
        )
    except SandboxSyscallError as exc:
        raise SandboxSyscallError("openat2", exc.errno, path=path) from None


def open_nofollow(path: str, beneath: str | None = None) -> int:
    """An O_PATH fd of ``path`` (relative to ``beneath`` when given, and never escaping it)
    that follows no symlink and no magic link in any component, the last one included: a
    link answers ELOOP (openat2(2) RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)."""
    resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
    if beneath is None:
        return openat2(AT_FDCWD, path, os.O_PATH | os.O_CLOEXEC, resolve)
    root = os.open(beneath, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        resolve |= RESOLVE_BENEATH
        return openat2(root, path.lstrip("/"), os.O_PATH | os.O_CLOEXEC, resolve)
    finally:
        os.close(root)


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def bind_tree(source: str, target: str, attr_set: int, userns_fd: int | None = None) -> None:
    """Bind ``source`` and every mount below it onto ``target``, with ``attr_set`` (MOUNT_ATTR_*)
    set on the whole tree before it is attached, id-mapped through ``userns_fd`` when given
    (Linux 5.12+): open_tree(OPEN_TREE_CLONE | AT_RECURSIVE), mount_setattr(AT_RECURSIVE),
    move_mount."""
    src = ctypes.create_string_buffer(os.fsencode(source))
    dst = ctypes.create_string_buffer(os.fsencode(target))
    empty = ctypes.create_string_buffer(b"")
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE
    try:
        tree = _sys("open_tree", AT_FDCWD, ctypes.addressof(src), flags)
    except SandboxSyscallError as exc:
        raise SandboxSyscallError("open_tree", exc.errno, path=source) from None
    try:
        idmap = MOUNT_ATTR_IDMAP if userns_fd is not None else 0
        attr = _MountAttr(attr_set | idmap, 0, 0, userns_fd or 0)
        name = "mount_setattr(idmap)" if idmap else "mount_setattr"
        try:
            _sys(
                "mount_setattr",
                tree,
                ctypes.addressof(empty),
                AT_EMPTY_PATH | AT_RECURSIVE,
                ctypes.addressof(attr),
                ctypes.sizeof(attr),
            )
        except SandboxSyscallError as exc:
            raise SandboxSyscallError(name, exc.errno, path=source) from None
        at_empty, at_dst = ctypes.addressof(empty), ctypes.addressof(dst)
        _sys("move_mount", tree, at_empty, AT_FDCWD, at_dst, MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(tree)


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """pidfd_getfd(2): a close-on-exec copy of fd ``fd`` of the process ``pidfd`` refers to."""
    return _sys("pidfd_getfd", pidfd, fd, 0)


def fork_single_threaded() -> int:
    """fork(2) without CPython's after-fork hooks (0 in the child, its pid in the parent), for a
    single-threaded caller with no Python signal handler left to run (none installed, or every
    signal blocked first) whose child uses no threads, imports, logging or random and ends in
    ``os._exit`` or ``execve``. glibc's fork still runs; why skipping PyOS_AfterFork_Child is
    sound then, and the ~0.45 ms of page faults it saves per fork: docs/adr/0008."""
    return _check("fork", _fork())


def close_range(first: int, last: int, flags: int = 0) -> None:
    """close_range(2): close every fd in [first, last]."""
    _sys("close_range", first, last, flags)


def set_loopback_up() -> None:
    """Bring ``lo`` up in the current (fresh) network namespace via SIOCSIFFLAGS."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            req = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, req))[1]
            req = struct.pack("16sH14x", b"lo", flags | _IFF_UP)
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, req)
    except OSError as exc:
        raise SandboxSyscallError("ioctl(SIOCSIFFLAGS lo)", exc.errno or _errno.EIO) from None

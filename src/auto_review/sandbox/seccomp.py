"""Seccomp: a default-allow deny list assembled into classic BPF in-project.

Once ``install`` returns, for this thread and every descendant: a syscall made with a foreign
audit arch kills the process (closes the i386 ``int 0x80`` / ``socketcall`` bypass); so does
an x32 number (the kernel lets x32 numbers through filters that do not check bit 30,
arch/x86/include/asm/seccomp.h; killing makes the denial visible even on kernels without x32,
which would answer ENOSYS themselves); every syscall in ``DENY_EPERM`` fails with EPERM; the
new mount API and ``clone3`` fail with ENOSYS so libc falls back to calls we can inspect (Flatpak,
CVE-2021-41133); ``fallocate`` fails with EOPNOTSUPP (glibc's posix_fallocate then writes);
``clone`` with a namespace flag, ``ioctl`` TIOCSTI/TIOCLINUX, ``personality`` other than the
default, ``socket``/``socketpair`` outside the policy's families, and ``chmod``/``fchmod``/
``fchmodat``/``fchmodat2`` setting a set-user-ID or set-group-ID bit, or write for group or
others, fail with EPERM; with
``deny_ipc`` (the restricted tier: no IPC namespace) so do the SysV IPC calls.
EPERM/ENOSYS are chosen so tests can tell a filter denial from a kernel refusal.

Out of scope: allowlisting (we run git and CPython, whose syscall sets move with their
versions); argument checks that need pointers (seccomp cannot dereference them).
The caller must set no_new_privs first (an unprivileged filter needs it) and install last.
"""

from __future__ import annotations

import errno
import functools
import socket
import struct
from typing import Final, NamedTuple

from auto_review.sandbox import kernel
from auto_review.sandbox._syscalls import ARCH, AUDIT_ARCH, SYSCALLS, X32_SYSCALL_BIT

__all__ = [
    "DENY_ENOSYS",
    "DENY_EOPNOTSUPP",
    "DENY_EPERM",
    "NETWORK_FAMILIES",
    "NO_NETWORK_FAMILIES",
    "Insn",
    "assemble",
    "build_filter",
    "install",
    "program_for",
]

# (syscall, why it is denied). Docker's default profile denies all of these unless a capability
# is granted (moby/profiles seccomp/default.json); Flatpak adds the keyring, NUMA and tty ones.
DENY_EPERM: Final[tuple[tuple[str, str], ...]] = (
    ("ptrace", "reads/writes other processes; seccomp bypass before 4.8 (CVE-2017-5206)"),
    ("process_vm_readv", "reads another process's memory"),
    ("process_vm_writev", "writes another process's memory"),
    ("kcmp", "probes other processes' kernel objects"),
    ("pidfd_getfd", "steals file descriptors from other processes"),
    ("process_madvise", "acts on another process's memory"),
    ("keyctl", "the kernel keyring is not namespaced"),
    ("add_key", "the kernel keyring is not namespaced"),
    ("request_key", "the kernel keyring is not namespaced"),
    ("bpf", "eBPF is a large kernel attack surface"),
    ("perf_event_open", "perf leaks kernel state and is an exploit staple"),
    ("userfaultfd", "freezes kernel threads mid-copy, used to win races in exploits"),
    ("io_uring_setup", "io_uring bypasses seccomp for its operations (e.g. AF_VSOCK sockets)"),
    ("io_uring_enter", "io_uring bypasses seccomp for its operations"),
    ("io_uring_register", "io_uring bypasses seccomp for its operations"),
    ("mount", "remounting would undo the read-only view"),
    ("umount2", "unmounting would expose what a mount hides"),
    ("pivot_root", "changes the root the sandbox was built on"),
    ("chroot", "a chroot escape needs a chroot"),
    ("unshare", "new user namespaces are the usual privilege-escalation stepping stone"),
    ("setns", "joining another namespace leaves the sandbox"),
    ("open_by_handle_at", "opens files by handle, bypassing the mount view ('shocker')"),
    ("name_to_handle_at", "companion of open_by_handle_at"),
    ("kexec_load", "loads a new kernel"),
    ("kexec_file_load", "loads a new kernel"),
    ("init_module", "loads kernel code"),
    ("finit_module", "loads kernel code"),
    ("delete_module", "unloads kernel code"),
    ("create_module", "obsolete module interface"),
    ("get_kernel_syms", "obsolete module interface"),
    ("query_module", "obsolete module interface"),
    ("swapon", "host swap configuration"),
    ("swapoff", "host swap configuration"),
    ("reboot", "host power state"),
    ("acct", "host process accounting"),
    ("quotactl", "host quota configuration"),
    ("quotactl_fd", "host quota configuration"),
    ("syslog", "the kernel log leaks addresses (KASLR)"),
    ("uselib", "obsolete loader, exploit helper"),
    ("ustat", "obsolete"),
    ("sysfs", "obsolete"),
    ("_sysctl", "obsolete"),
    ("nfsservctl", "obsolete"),
    ("lookup_dcookie", "leaks kernel paths"),
    ("iopl", "raw port I/O"),
    ("ioperm", "raw port I/O"),
    ("mbind", "NUMA policy affects the host"),
    ("set_mempolicy", "NUMA policy affects the host"),
    ("get_mempolicy", "NUMA policy probing"),
    ("migrate_pages", "moves other processes' memory"),
    ("move_pages", "moves other processes' memory"),
    ("set_mempolicy_home_node", "NUMA policy affects the host"),
    ("fanotify_init", "watches the whole mount"),
    ("settimeofday", "host clock"),
    ("clock_settime", "host clock"),
    ("clock_adjtime", "host clock"),
    ("sethostname", "host name when no UTS namespace is in place"),
    ("setdomainname", "domain name when no UTS namespace is in place"),
    ("vhangup", "hangs up the terminal"),
    ("lsm_get_self_attr", "LSM interfaces (Docker denies them)"),
    ("lsm_set_self_attr", "LSM interfaces (Docker denies them)"),
    ("lsm_list_modules", "LSM interfaces (Docker denies them)"),
)

# ENOSYS, not EPERM: seccomp cannot read clone3's struct or the new mount API's arguments; on
# ENOSYS glibc falls back to clone(2), whose flags we can check (Flatpak, CVE-2021-41133).
DENY_ENOSYS: Final[tuple[str, ...]] = (
    "clone3",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "open_tree_attr",
    "move_mount",
    "mount_setattr",
)

# EOPNOTSUPP, the answer of a filesystem without it, so callers fall back to writing (glibc's
# posix_fallocate does). closes: fallocate allocating ~500 GiB/s, far past what the disk cap's
# poll can see in time (diskcap.py); written data arrives at page-cache speed instead.
DENY_EOPNOTSUPP: Final[tuple[str, ...]] = ("fallocate",)

# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET, Docker's mask. CLONE_NEWTIME
# (0x80) is left out on purpose: it overlaps the exit-signal byte of clone's flags.
_CLONE_NS_MASK: Final = 0x7E020000
# <asm-generic/ioctls.h>; compared on the low 32 bits because the kernel truncates the request
# (CVE-2017-5226, CVE-2019-10063 high-bits bypass, CVE-2023-28100 TIOCLINUX).
_TIOCSTI: Final = 0x5412
_TIOCLINUX: Final = 0x541C
# personality(2): PER_LINUX (0) and the query value 0xffffffff.
_PERSONALITY_ALLOWED: Final = (0x0, 0xFFFFFFFF)
# closes: a job leaving a set-user-ID executable in a writable dir, where host users run it as
# the file's owner: root for a root-started full-tier job (its writable binds are id-mapped, so
# its files are root's on disk), the operator otherwise. chmod is the only way to set the bits
# on a file with content: a created file's bits are cleared by its first write or truncate
# (file_remove_privs; the job has no CAP_FSETID), and an empty file runs nothing.
SET_ID_BITS: Final = 0o6000  # S_ISUID | S_ISGID
# closes: Landlock does not govern chmod, so a restricted-tier job could make anything its uid
# owns and can name writable by other users, granted to it or not: started by an ordinary user,
# the service's state directory and database, or a one-file build's unpacked files, which a
# local user could then replace before the service loads them (F93). git and CPython never
# chmod group or other write in; neither does auto-review's gateway.
SHARED_WRITE_BITS: Final = 0o022  # S_IWGRP | S_IWOTH
_REFUSED_MODE_BITS: Final = SET_ID_BITS | SHARED_WRITE_BITS
_CHMOD_MODE_ARG: Final = (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2))
# closes: without an IPC namespace (restricted tier) SysV IPC objects are the host's: a job
# attaches any segment, semaphore set or queue its uid may (another job's as host nobody, the
# operator's apps' otherwise). They are named by number, so Landlock, which governs paths, never
# sees them (POSIX message queues are files of the kernel's mqueue mount: Landlock refuses
# those). git and CPython use none of them.
IPC_SYSCALLS: Final = (
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "semget",
    "semop",
    "semctl",
    "semtimedop",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
)

NO_NETWORK_FAMILIES: Final = frozenset({socket.AF_UNIX})
NETWORK_FAMILIES: Final = frozenset({socket.AF_UNIX, socket.AF_INET, socket.AF_INET6})

# <linux/filter.h>, <linux/seccomp.h>
_LD_W_ABS: Final = 0x20
_JEQ_K: Final = 0x15
_JSET_K: Final = 0x45
_RET_K: Final = 0x06
_RET_KILL_PROCESS: Final = 0x80000000
_RET_ERRNO: Final = 0x00050000
_RET_ALLOW: Final = 0x7FFF0000
# struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6]. Little-endian on both supported
# architectures, so an argument's low 32 bits sit at its own offset.
_OFF_NR: Final = 0
_OFF_ARCH: Final = 4


def _arg_lo(index: int) -> int:
    return 16 + 8 * index


class Insn(NamedTuple):
    """One ``struct sock_filter``."""

    code: int
    jt: int
    jf: int
    k: int


def _ld(offset: int) -> Insn:
    return Insn(_LD_W_ABS, 0, 0, offset)


def _ret(value: int) -> Insn:
    return Insn(_RET_K, 0, 0, value)


def _eperm() -> Insn:
    return _ret(_RET_ERRNO | errno.EPERM)


def _allow() -> Insn:
    return _ret(_RET_ALLOW)


def _guarded(nr: int, block: list[Insn]) -> list[Insn]:
    """``if nr == <nr>: <block>`` (the block always returns, so nothing falls through)."""
    return [Insn(_JEQ_K, 0, len(block), nr), *block]


def _one_of(values: tuple[int, ...] | frozenset[int], hit: Insn, miss: Insn) -> list[Insn]:
    out: list[Insn] = []
    for value in sorted(values):
        out += [Insn(_JEQ_K, 0, 1, value), hit]
    return [*out, miss]


def build_filter(
    socket_families: frozenset[int],
    arch: str | None = None,
    *,
    socketpair_families: frozenset[int] | None = None,
    deny_ipc: bool = False,
) -> list[Insn]:
    """The filter program for ``arch`` (default: this machine) as a plain instruction list.

    ``socketpair_families`` defaults to ``socket_families``; the restricted tier passes
    AF_UNIX for socketpair only, because without a mount view socket(AF_UNIX) could reach any
    host daemon's socket file (docker.sock, the D-Bus bus) that Landlock < ABI 9 cannot guard;
    it also passes ``deny_ipc`` (IPC_SYSCALLS answer EPERM: no IPC namespace holds them)."""
    arch = arch or ARCH
    if arch is None or arch not in SYSCALLS:
        raise ValueError(f"no seccomp table for architecture {arch!r}")
    table = SYSCALLS[arch]
    prog = [_ld(_OFF_ARCH), Insn(_JEQ_K, 1, 0, AUDIT_ARCH[arch]), _ret(_RET_KILL_PROCESS)]
    prog.append(_ld(_OFF_NR))
    if arch == "x86_64":
        prog += [Insn(_JSET_K, 0, 1, X32_SYSCALL_BIT), _ret(_RET_KILL_PROCESS)]
    for name, _why in DENY_EPERM:
        if name in table:
            prog += _guarded(table[name], [_eperm()])
    for name in IPC_SYSCALLS if deny_ipc else ():
        if name in table:
            prog += _guarded(table[name], [_eperm()])
    for name, index in _CHMOD_MODE_ARG:
        if name in table:
            prog += _guarded(
                table[name],
                [_ld(_arg_lo(index)), Insn(_JSET_K, 0, 1, _REFUSED_MODE_BITS), _eperm(), _allow()],
            )
    for name in DENY_ENOSYS:
        prog += _guarded(table[name], [_ret(_RET_ERRNO | errno.ENOSYS)])
    for name in DENY_EOPNOTSUPP:
        prog += _guarded(table[name], [_ret(_RET_ERRNO | errno.EOPNOTSUPP)])
    prog += _guarded(
        table["clone"], [_ld(_arg_lo(0)), Insn(_JSET_K, 0, 1, _CLONE_NS_MASK), _eperm(), _allow()]
    )
    prog += _guarded(
        table["ioctl"],
        [_ld(_arg_lo(1)), *_one_of((_TIOCSTI, _TIOCLINUX), hit=_eperm(), miss=_allow())],
    )
    prog += _guarded(
        table["personality"],
        [_ld(_arg_lo(0)), *_one_of(_PERSONALITY_ALLOWED, hit=_allow(), miss=_eperm())],
    )
    pairs = socket_families if socketpair_families is None else socketpair_families
    for name, families in (("socket", socket_families), ("socketpair", pairs)):
        prog += _guarded(
            table[name], [_ld(_arg_lo(0)), *_one_of(families, hit=_allow(), miss=_eperm())]
        )
    prog.append(_allow())
    for insn in prog:  # conditional jumps are 8-bit; our blocks are tiny, but prove it
        if insn.jt > 255 or insn.jf > 255:
            raise ValueError("BPF jump out of range")
    return prog


@functools.lru_cache(maxsize=16)
def program_for(
    socket_families: frozenset[int],
    socketpair_families: frozenset[int] | None = None,
    deny_ipc: bool = False,
) -> bytes:
    """The assembled filter for this machine (cached: policies share a handful of programs)."""
    prog = build_filter(socket_families, socketpair_families=socketpair_families, deny_ipc=deny_ipc)
    return assemble(prog)


def assemble(prog: list[Insn]) -> bytes:
    """Pack instructions into the kernel's ``struct sock_filter`` array (native byte order)."""
    if len(prog) > 4096:  # BPF_MAXINSNS
        raise ValueError("seccomp program too long")
    return b"".join(struct.pack("=HBBI", *insn) for insn in prog)


def install(program: bytes) -> None:
    """Install the filter on the calling thread; no_new_privs must already be set."""
    kernel.seccomp_set_mode_filter(program)

"""Syscall numbers and audit-arch ids, one table per supported architecture.

Sources: the kernel UAPI headers (arch/x86/entry/syscalls/syscall_64.tbl for x86_64,
include/uapi/asm-generic/unistd.h for aarch64), cross-checked in tests against libseccomp's
resolver. Syscalls added after 5.3 share one number on both architectures (424 and up). A name
missing from a table does not exist on that architecture, so it cannot be called and needs no rule.
"""

from __future__ import annotations

import platform
from typing import Final

__all__ = ["ARCH", "AUDIT_ARCH", "NATIVE", "SYSCALLS", "X32_SYSCALL_BIT", "syscall_number"]

# <linux/audit.h>: AUDIT_ARCH_X86_64 = EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE,
# AUDIT_ARCH_AARCH64 = EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
_AUDIT_ARCH: Final = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# arch/x86/include/uapi/asm/unistd.h: x32 syscalls are the x86_64 numbers with bit 30 set.
X32_SYSCALL_BIT: Final = 0x40000000

# Numbers shared by both architectures (the unified table that starts at 424).
_COMMON: Final = {
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "close_range": 436,
    "openat2": 437,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
    "set_mempolicy_home_node": 450,
    "lsm_get_self_attr": 459,  # Linux 6.8
    "lsm_set_self_attr": 460,
    "lsm_list_modules": 461,
    "fchmodat2": 452,  # Linux 6.6: fchmodat with flags
    "open_tree_attr": 467,  # Linux 6.15: open_tree() with mount attributes
}

_X86_64: Final = {
    **_COMMON,
    "ioctl": 16,
    "shmget": 29,
    "shmat": 30,
    "shmctl": 31,
    "socket": 41,
    "socketpair": 53,
    "clone": 56,
    "execve": 59,
    "semget": 64,
    "semop": 65,
    "semctl": 66,
    "shmdt": 67,
    "msgget": 68,
    "msgsnd": 69,
    "msgrcv": 70,
    "msgctl": 71,
    "chmod": 90,
    "fchmod": 91,
    "ptrace": 101,
    "syslog": 103,
    "capget": 125,
    "capset": 126,
    "uselib": 134,
    "personality": 135,
    "ustat": 136,
    "sysfs": 139,
    "vhangup": 153,
    "pivot_root": 155,
    "_sysctl": 156,
    "prctl": 157,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "create_module": 174,
    "init_module": 175,
    "delete_module": 176,
    "get_kernel_syms": 177,
    "query_module": 178,
    "quotactl": 179,
    "nfsservctl": 180,
    "lookup_dcookie": 212,
    "semtimedop": 220,
    "clock_settime": 227,
    "mbind": 237,
    "set_mempolicy": 238,
    "get_mempolicy": 239,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "migrate_pages": 256,
    "fchmodat": 268,
    "unshare": 272,
    "move_pages": 279,
    "fallocate": 285,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "seccomp": 317,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
}

_AARCH64: Final = {
    **_COMMON,
    "lookup_dcookie": 18,
    "ioctl": 29,
    "umount2": 39,
    "mount": 40,
    "pivot_root": 41,
    "nfsservctl": 42,
    "fallocate": 47,
    "chroot": 51,
    "fchmod": 52,
    "fchmodat": 53,
    "vhangup": 58,
    "quotactl": 60,
    "acct": 89,
    "capget": 90,
    "capset": 91,
    "personality": 92,
    "unshare": 97,
    "kexec_load": 104,
    "init_module": 105,
    "delete_module": 106,
    "clock_settime": 112,
    "syslog": 116,
    "ptrace": 117,
    "reboot": 142,
    "sethostname": 161,
    "setdomainname": 162,
    "prctl": 167,
    "settimeofday": 170,
    "adjtimex": 171,
    "socket": 198,
    "socketpair": 199,
    "add_key": 217,
    "request_key": 218,
    "keyctl": 219,
    "clone": 220,
    "execve": 221,
    "swapon": 224,
    "swapoff": 225,
    "mbind": 235,
    "get_mempolicy": 236,
    "set_mempolicy": 237,
    "migrate_pages": 238,
    "move_pages": 239,
    "msgget": 186,
    "msgctl": 187,
    "msgrcv": 188,
    "msgsnd": 189,
    "semget": 190,
    "semctl": 191,
    "semtimedop": 192,
    "semop": 193,
    "shmget": 194,
    "shmctl": 195,
    "shmat": 196,
    "shmdt": 197,
    "perf_event_open": 241,
    "fanotify_init": 262,
    "name_to_handle_at": 264,
    "open_by_handle_at": 265,
    "clock_adjtime": 266,
    "setns": 268,
    "process_vm_readv": 270,
    "process_vm_writev": 271,
    "kcmp": 272,
    "finit_module": 273,
    "seccomp": 277,
    "bpf": 280,
    "userfaultfd": 282,
    "kexec_file_load": 294,
}

SYSCALLS: Final[dict[str, dict[str, int]]] = {"x86_64": _X86_64, "aarch64": _AARCH64}
AUDIT_ARCH: Final = _AUDIT_ARCH

_MACHINE_ALIASES: Final = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
}
ARCH: Final[str | None] = _MACHINE_ALIASES.get(platform.machine().lower())
# The table for this machine; empty on an unsupported architecture (the probe reports it).
NATIVE: Final[dict[str, int]] = SYSCALLS.get(ARCH or "", {})


def syscall_number(name: str) -> int:
    """The number of ``name`` on this machine; KeyError if it does not exist here."""
    return NATIVE[name]

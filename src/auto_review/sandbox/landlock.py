"""Landlock: file-system and TCP-port rules plus IPC scoping, at the best ABI the kernel has.

Once ``restrict`` returns (ABI >= 1), this thread and its future children can only read (and
execute) beneath ``read_paths``, read and write (never execute) beneath ``write_paths``; with
ABI >= 4, bind/connect TCP only to the listed ports when a port list is given; with ABI >= 6,
cannot connect to abstract unix sockets or signal processes outside the sandbox's own domain
(closes: talking to host daemons over ``@``-sockets and signalling the supervisor or the host).
Rules stack with the mount view; they hold even for uid 0 (kernel landlock.rst).

Out of scope: which ABI is *required* (the tier decides, probe.py); UDP and destination
addresses (Landlock filters TCP ports only, so egress by address is the network namespace's job).
no_new_privs must be set first (landlock_restrict_self refuses otherwise without CAP_SYS_ADMIN).
Rule paths are opened without following any symlink, except those listed in ``follow`` (the
system and interpreter views): a job path swapped for a link after the policy was checked is
refused (``SandboxPolicyInvalid``) instead of granting rights on the link's target.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass, field
from typing import Final

from auto_review.sandbox import kernel
from auto_review.sandbox.errors import SandboxPolicyInvalid, SandboxSyscallError
from auto_review.sandbox.identity import HostIdentity

__all__ = ["MAX_KNOWN_ABI", "LandlockResult", "LandlockRules", "abi_version", "restrict"]

MAX_KNOWN_ABI: Final = 7  # ABI 7 adds audit-log flags only; nothing below needs it

# <linux/landlock.h> file-system rights and the ABI that introduced each.
_EXECUTE: Final = 1 << 0
_WRITE_FILE: Final = 1 << 1
_READ_FILE: Final = 1 << 2
_READ_DIR: Final = 1 << 3
_REMOVE_DIR: Final = 1 << 4
_REMOVE_FILE: Final = 1 << 5
_MAKE_CHAR: Final = 1 << 6
_MAKE_DIR: Final = 1 << 7
_MAKE_REG: Final = 1 << 8
_MAKE_SOCK: Final = 1 << 9
_MAKE_FIFO: Final = 1 << 10
_MAKE_BLOCK: Final = 1 << 11
_MAKE_SYM: Final = 1 << 12
_REFER: Final = 1 << 13  # ABI 2
_TRUNCATE: Final = 1 << 14  # ABI 3
_IOCTL_DEV: Final = 1 << 15  # ABI 5
_NET_BIND_TCP: Final = 1 << 0  # ABI 4
_NET_CONNECT_TCP: Final = 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET: Final = 1 << 0  # ABI 6
_SCOPE_SIGNAL: Final = 1 << 1  # ABI 6
_RULE_PATH_BENEATH: Final = 1
_RULE_NET_PORT: Final = 2

# Rights that make sense on a file; the kernel rejects directory-only rights on a file rule.
_FILE_RIGHTS: Final = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_READ: Final = _EXECUTE | _READ_FILE | _READ_DIR
# Writable places never get EXECUTE (closes: drop a payload, then run it) nor device creation.
_WRITE: Final = (
    _READ_FILE
    | _READ_DIR
    | _WRITE_FILE
    | _REMOVE_DIR
    | _REMOVE_FILE
    | _MAKE_DIR
    | _MAKE_REG
    | _MAKE_SOCK
    | _MAKE_FIFO
    | _MAKE_SYM
    | _REFER
    | _TRUNCATE
)


def _handled_fs(abi: int) -> int:
    handled = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        handled |= _REFER
    if abi >= 3:
        handled |= _TRUNCATE
    if abi >= 5:
        handled |= _IOCTL_DEV
    return handled


@dataclass(frozen=True)
class LandlockRules:
    """What the sandbox may touch; ``None`` port lists leave that TCP direction unrestricted."""

    read_paths: tuple[str, ...]
    write_paths: tuple[str, ...]
    bind_ports: tuple[int, ...] | None = ()
    connect_ports: tuple[int, ...] | None = ()
    scope_ipc: bool = True
    # Directories that may only be listed (full tier: "/" of the already-minimal root, so
    # ``ls /`` works; it grants no file reads).
    list_paths: tuple[str, ...] = ()
    # Paths whose symlinks may be followed: the system and interpreter views, which no job can
    # write. Every other rule path is opened with openat2(RESOLVE_NO_SYMLINKS).
    follow: frozenset[str] = frozenset()
    # Whose host permissions the rule paths are opened with, for a refusal's advice (None: this
    # process's uid, with no tier to go by).
    host: HostIdentity | None = None


@dataclass(frozen=True)
class LandlockResult:
    """What ``restrict`` really enforced."""

    abi: int
    fs_rules: int = 0
    tcp_bind: bool = False
    tcp_connect: bool = False
    scoped: bool = False
    skipped_paths: tuple[str, ...] = field(default=())


def abi_version() -> int:
    """The kernel's Landlock ABI (0 when absent or disabled)."""
    return kernel.landlock_abi_version()


def _open_rule_path(path: str, follow: bool, host: HostIdentity | None) -> int | None:
    """An O_PATH fd of ``path`` (None when it does not exist: a missing path stays denied).

    closes: a job path that was a directory when the policy was checked and is a symlink to
    a host directory by now (the state dir's writer can race the job server's fork): the rule
    would otherwise grant its rights on the link's target (runc CVE-2021-30465 class)."""
    try:
        if follow:
            return os.open(path, os.O_PATH | os.O_CLOEXEC)
        return kernel.open_nofollow(path)
    except (OSError, SandboxSyscallError) as exc:
        code = exc.errno
    if code == errno.ENOENT:
        return None
    if code == errno.ELOOP:  # RESOLVE_NO_SYMLINKS met a link in some component
        raise SandboxPolicyInvalid(
            f"{path}: a component became a symlink after the policy was checked (ELOOP); "
            "job paths may not contain symlinks"
        )
    if code == errno.EACCES:  # e.g. what root starts runs as host nobody (identity.py)
        # Inside a user namespace os.getuid() is not the uid the host checks: hence ``host``.
        who = host or HostIdentity(os.getuid(), full_tier=False, root_started=False)
        raise SandboxPolicyInvalid(
            f"{path}: not reachable by {who.who()} (EACCES: a directory above it is not "
            f"searchable by that uid); {who.fix(f'setfacl -m u:{who.uid}:x on those directories')}"
        )
    raise SandboxSyscallError("open(landlock rule path)", code or errno.EIO, path=path)


def _add_path(ruleset: int, path: str, rights: int, handled: int, rules: LandlockRules) -> bool:
    fd = _open_rule_path(path, path in rules.follow, rules.host)
    if fd is None:
        return False
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS  # dir-only rights on a file rule fail with EINVAL
        kernel.landlock_add_rule(
            ruleset, _RULE_PATH_BENEATH, struct.pack("=Qi", rights & handled, fd)
        )
    finally:
        os.close(fd)
    return True


def restrict(rules: LandlockRules, abi: int | None = None) -> LandlockResult:
    """Build the ruleset at the best ABI available and enforce it on the calling thread."""
    abi = kernel.landlock_abi_version() if abi is None else abi
    if abi <= 0:
        return LandlockResult(abi=0)
    handled_fs = _handled_fs(abi)
    handled_net = 0
    if abi >= 4:
        handled_net |= _NET_BIND_TCP if rules.bind_ports is not None else 0
        handled_net |= _NET_CONNECT_TCP if rules.connect_ports is not None else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 and rules.scope_ipc else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("=Q", handled_fs)
    ruleset = kernel.landlock_create_ruleset(attr)
    try:
        count, skipped = 0, []
        for paths, rights in (
            (rules.list_paths, _READ_DIR),
            (rules.read_paths, _READ),
            (rules.write_paths, _WRITE),
        ):
            for path in paths:
                if _add_path(ruleset, path, rights, handled_fs, rules):
                    count += 1
                else:
                    skipped.append(path)
        if handled_net & _NET_BIND_TCP:
            for port in rules.bind_ports or ():
                kernel.landlock_add_rule(
                    ruleset, _RULE_NET_PORT, struct.pack("=QQ", _NET_BIND_TCP, port)
                )
        if handled_net & _NET_CONNECT_TCP:
            for port in rules.connect_ports or ():
                kernel.landlock_add_rule(
                    ruleset, _RULE_NET_PORT, struct.pack("=QQ", _NET_CONNECT_TCP, port)
                )
        kernel.landlock_restrict_self(ruleset)
    finally:
        os.close(ruleset)
    return LandlockResult(
        abi=abi,
        fs_rules=count,
        tcp_bind=bool(handled_net & _NET_BIND_TCP),
        tcp_connect=bool(handled_net & _NET_CONNECT_TCP),
        scoped=bool(scoped),
        skipped_paths=tuple(skipped),
    )

"""Seccomp: the assembled BPF, simulated and checked against libseccomp, then on the real kernel."""

from __future__ import annotations

import ctypes
import errno
import io
import os
import socket
import struct

import pytest
from tests.unit.sandbox._helpers import in_child

from auto_review.sandbox import host_support, limits, seccomp
from auto_review.sandbox._syscalls import AUDIT_ARCH, NATIVE, SYSCALLS, X32_SYSCALL_BIT

ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
EPERM = 0x00050000 | errno.EPERM
ENOSYS = 0x00050000 | errno.ENOSYS
TIOCSTI = 0x5412


def simulate(
    prog: list[tuple[int, int, int, int]], nr: int, arch: int, args: tuple[int, ...] = ()
) -> int:
    """A classic-BPF interpreter for seccomp programs (the opcodes libseccomp and we emit)."""
    full = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *full)
    acc, idx, mem, pc = 0, 0, [0] * 16, 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x00:  # ld #k
            acc = k
        elif code == 0x60:  # ld M[k]
            acc = mem[k]
        elif code == 0x61:  # ldx M[k]
            idx = mem[k]
        elif code == 0x02:  # st M[k]
            mem[k] = acc
        elif code == 0x03:  # stx M[k]
            mem[k] = idx
        elif code == 0x54:  # and #k
            acc &= k
        elif code == 0x07:  # tax
            idx = acc
        elif code == 0x87:  # txa
            acc = idx
        elif code == 0x05:  # ja
            pc += k
        elif cls == 0x05:
            op, src = code & 0xF0, (idx if code & 0x08 else k)
            taken = {0x10: acc == src, 0x20: acc > src, 0x30: acc >= src, 0x40: bool(acc & src)}[op]
            pc += jt if taken else jf
        elif code == 0x06:
            return k
        elif code == 0x16:
            return acc
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def ours(
    families: frozenset[int] = seccomp.NO_NETWORK_FAMILIES, arch: str = "x86_64"
) -> list[tuple[int, int, int, int]]:
    return [tuple(i) for i in seccomp.build_filter(families, arch)]  # type: ignore[misc]


@pytest.mark.parametrize("arch", sorted(SYSCALLS))
def test_filter_denies_each_listed_syscall_with_eperm_and_allows_others(arch: str) -> None:
    prog, audit = ours(arch=arch), AUDIT_ARCH[arch]
    table = SYSCALLS[arch]
    for name, _why in seccomp.DENY_EPERM:
        if name in table:
            assert simulate(prog, table[name], audit) == EPERM, name
    for name in seccomp.DENY_ENOSYS:
        assert simulate(prog, table[name], audit) == ENOSYS, name
    for name in seccomp.DENY_EOPNOTSUPP:
        assert simulate(prog, table[name], audit) == 0x00050000 | errno.EOPNOTSUPP, name
    assert simulate(prog, table["execve"], audit) == ALLOW
    assert simulate(prog, table["landlock_restrict_self"], audit) == ALLOW


@pytest.mark.parametrize("arch", sorted(SYSCALLS))
def test_filter_kills_a_foreign_architecture(arch: str) -> None:
    prog = ours(arch=arch)
    i386 = 0x40000003  # AUDIT_ARCH_I386
    assert simulate(prog, 0, i386) == KILL_PROCESS
    assert simulate(prog, 0, AUDIT_ARCH[arch]) == ALLOW


def test_filter_kills_on_x32_numbers_on_x86_64() -> None:
    prog = ours(arch="x86_64")
    assert simulate(prog, X32_SYSCALL_BIT | 39, AUDIT_ARCH["x86_64"]) == KILL_PROCESS
    assert simulate(prog, 39, AUDIT_ARCH["x86_64"]) == ALLOW


def test_filter_refuses_clone_with_any_namespace_flag_but_not_plain_fork() -> None:
    prog, audit, nr = ours(), AUDIT_ARCH["x86_64"], SYSCALLS["x86_64"]["clone"]
    for bit in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        assert simulate(prog, nr, audit, (bit | 17,)) == EPERM, hex(bit)
    assert simulate(prog, nr, audit, (0x01200011,)) == ALLOW  # glibc fork()'s flags
    assert simulate(prog, nr, audit, (0x80 | 17,)) == ALLOW  # CLONE_NEWTIME left out on purpose


def test_filter_compares_ioctl_requests_on_their_low_32_bits() -> None:
    prog, audit, nr = ours(), AUDIT_ARCH["x86_64"], SYSCALLS["x86_64"]["ioctl"]
    assert simulate(prog, nr, audit, (0, TIOCSTI)) == EPERM
    assert simulate(prog, nr, audit, (0, (1 << 32) | TIOCSTI)) == EPERM  # CVE-2019-10063
    assert simulate(prog, nr, audit, (0, 0x541C)) == EPERM  # TIOCLINUX
    assert simulate(prog, nr, audit, (0, 0x5401)) == ALLOW  # TCGETS


def test_filter_allows_only_the_policy_socket_families() -> None:
    audit, nr = AUDIT_ARCH["x86_64"], SYSCALLS["x86_64"]["socket"]
    closed, open_ = ours(seccomp.NO_NETWORK_FAMILIES), ours(seccomp.NETWORK_FAMILIES)
    assert simulate(closed, nr, audit, (socket.AF_UNIX,)) == ALLOW
    assert simulate(closed, nr, audit, (socket.AF_INET,)) == EPERM
    assert simulate(open_, nr, audit, (socket.AF_INET6,)) == ALLOW
    for family in (socket.AF_NETLINK, socket.AF_PACKET, 38, 40):  # 38 AF_ALG, 40 AF_VSOCK
        assert simulate(open_, nr, audit, (family,)) == EPERM, family


def test_filter_allows_only_the_default_personality() -> None:
    prog, audit, nr = ours(), AUDIT_ARCH["x86_64"], SYSCALLS["x86_64"]["personality"]
    assert simulate(prog, nr, audit, (0,)) == ALLOW
    assert simulate(prog, nr, audit, (0xFFFFFFFF,)) == ALLOW
    assert simulate(prog, nr, audit, (0x0040000,)) == EPERM  # ADDR_NO_RANDOMIZE


def test_filter_refuses_set_id_bits_in_every_chmod_call_but_plain_modes() -> None:
    prog, audit = ours(), AUDIT_ARCH["x86_64"]
    modes = [(0o4755, EPERM), (0o2700, EPERM), (0o6000, EPERM), (0o1755, ALLOW), (0o644, ALLOW)]
    # F93: write for group or others, which Landlock would not stop on a file the job owns.
    modes += [(0o777, EPERM), (0o1777, EPERM), (0o620, EPERM), (0o702, EPERM), (0o744, ALLOW)]
    for name, index in (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2)):
        nr = SYSCALLS["x86_64"][name]
        for mode, expected in modes:
            args = tuple(mode if i == index else 0 for i in range(index + 1))
            assert simulate(prog, nr, audit, args) == expected, (name, oct(mode))


def test_filter_refuses_host_ipc_only_when_asked() -> None:
    audit, table = AUDIT_ARCH["x86_64"], SYSCALLS["x86_64"]
    families = seccomp.NO_NETWORK_FAMILIES
    plain = ours(families)
    denied = [tuple(i) for i in seccomp.build_filter(families, "x86_64", deny_ipc=True)]
    for name in seccomp.IPC_SYSCALLS:
        assert simulate(plain, table[name], audit) == ALLOW, name
        assert simulate(denied, table[name], audit) == EPERM, name  # type: ignore[arg-type]
    assert simulate(denied, 39, audit) == ALLOW  # type: ignore[arg-type]  # getpid


def _oracle_program() -> list[tuple[int, int, int, int]]:
    pyseccomp = pytest.importorskip("pyseccomp", reason="pyseccomp (libseccomp oracle) missing")
    try:
        filt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    except Exception as exc:  # pragma: no cover - depends on the host library
        pytest.skip(f"libseccomp.so.2 unusable: {exc}")
    for name, _why in seccomp.DENY_EPERM:
        if name in NATIVE and name not in (
            "lsm_get_self_attr",
            "lsm_set_self_attr",
            "lsm_list_modules",
        ):
            filt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    for name in seccomp.DENY_ENOSYS:
        if name != "open_tree_attr":  # newer than libseccomp 2.5
            filt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), name)
    for name in seccomp.DENY_EOPNOTSUPP:
        filt.add_rule(pyseccomp.ERRNO(errno.EOPNOTSUPP), name)
    for bit in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        filt.add_rule(
            pyseccomp.ERRNO(errno.EPERM), "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, bit, bit)
        )
    for name, index in (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2)):
        for bit in (0o4000, 0o2000):
            filt.add_rule(
                pyseccomp.ERRNO(errno.EPERM),
                name,
                pyseccomp.Arg(index, pyseccomp.MASKED_EQ, bit, bit),
            )
    for request in (TIOCSTI, 0x541C):
        filt.add_rule(
            pyseccomp.ERRNO(errno.EPERM),
            "ioctl",
            pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, request),
        )
    buf = io.BytesIO()
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as out:
        filt.export_bpf(out)
    with os.fdopen(read_fd, "rb") as inp:
        buf.write(inp.read())
    raw = buf.getvalue()
    return [struct.unpack_from("=HBBI", raw, off) for off in range(0, len(raw), 8)]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="oracle comparison written for x86_64")
def test_filter_agrees_with_the_libseccomp_oracle_on_every_syscall_number() -> None:
    oracle, prog, audit = _oracle_program(), ours(), AUDIT_ARCH["x86_64"]
    skip = {
        NATIVE[n]
        for n in (
            "socket",
            "socketpair",
            "personality",
            "lsm_get_self_attr",
            "lsm_set_self_attr",
            "lsm_list_modules",
            "open_tree_attr",
        )
    }
    # x32 numbers are outside 0..470, so libseccomp's own x32 handling is not compared here.
    arg_sets = [
        (),
        (0x10000000 | 17,),
        (0x01200011,),
        (0, TIOCSTI),
        (0, (7 << 32) | TIOCSTI),
        (0, 0x5401),
        (0, 0o4755, 0o4755),
        (0, 0o2755, 0o2755),
        (0, 0o755, 0o755),
    ]
    compared = 0
    for nr in range(0, 470):
        if nr in skip:
            continue
        for args in arg_sets:
            assert simulate(prog, nr, audit, args) == simulate(oracle, nr, audit, args), (nr, args)
            compared += 1
    assert compared > 2000


def test_syscall_table_matches_libseccomp_names_for_both_architectures() -> None:
    pyseccomp = pytest.importorskip("pyseccomp", reason="pyseccomp (libseccomp oracle) missing")
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
    del pyseccomp
    checked = 0
    for arch, table in SYSCALLS.items():
        for name, number in table.items():
            found = lib.seccomp_syscall_resolve_name_arch(AUDIT_ARCH[arch], name.encode())
            if found >= 0:  # libseccomp 2.5 predates the newest calls
                assert found == number, (arch, name)
                checked += 1
    assert checked > 100


def _errno_of(name: str, *args: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(NATIVE[name]), *[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if ret == -1 else 0


@pytest.mark.sandbox
def test_installed_filter_denies_with_eperm_and_enosys_while_fork_and_unix_sockets_work() -> None:
    if not host_support().seccomp.available:
        pytest.skip(f"seccomp filtering unavailable: {host_support().seccomp.detail}")

    def confined() -> dict[str, int]:
        before = {"bpf": _errno_of("bpf", -1, 0, 0), "unshare": _errno_of("unshare", 0)}
        limits.set_no_new_privs()
        seccomp.install(seccomp.assemble(seccomp.build_filter(seccomp.NO_NETWORK_FAMILIES)))
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        forked = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        left, right = socket.socketpair(socket.AF_UNIX)
        left.close()
        right.close()
        unix_ok = 1
        return {
            **{f"before_{k}": v for k, v in before.items()},
            "bpf": _errno_of("bpf", -1, 0, 0),
            "unshare": _errno_of("unshare", 0),
            "keyctl": _errno_of("keyctl", 0, 0),
            "clone3": _errno_of("clone3", 0, 0),
            "tiocsti": _errno_of("ioctl", -1, TIOCSTI, 0),
            "tiocsti_high": _errno_of("ioctl", -1, (1 << 32) | TIOCSTI, 0),
            "tcgets": _errno_of("ioctl", -1, 0x5401, 0),
            "inet": _errno_of("socket", socket.AF_INET, socket.SOCK_STREAM, 0),
            "forked": forked,
            "unix_ok": unix_ok,
        }

    seen = in_child(confined)
    assert seen["before_bpf"] != errno.EPERM or os.geteuid() != 0  # the probe works unconfined
    assert seen["before_unshare"] == 0  # positive control: unshare(0) succeeds unconfined
    assert seen["unshare"] == errno.EPERM
    assert seen["bpf"] == errno.EPERM
    assert seen["keyctl"] == errno.EPERM
    assert seen["clone3"] == errno.ENOSYS
    assert seen["tiocsti"] == errno.EPERM
    assert seen["tiocsti_high"] == errno.EPERM
    assert seen["tcgets"] == errno.EBADF  # control: other ioctls reach the kernel
    assert seen["inet"] == errno.EPERM
    assert seen["forked"] == 7
    assert seen["unix_ok"] == 1

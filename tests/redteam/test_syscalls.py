"""Red team: kernel attack surface the seccomp filter must close (prior-art §4.1 cases 10-16).

Each attack first runs on the host, where it must work (or, for a marker call, reach the kernel
and fail with the harmless EBADF/EFAULT its bad arguments earn). Then it runs in the sandbox,
where it must fail with the filter's own answer: EPERM for the deny list, ENOSYS for clone3 and
the new mount API (so libc falls back, Flatpak CVE-2021-41133), SIGSYS for foreign ABIs.
"""

from __future__ import annotations

import pytest
from tests.redteam._harness import Outcome, Probes, run_host, run_sandboxed, signal_name

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox]

_POLICY_VIOLATION_EXIT = 123
"""``SandboxPolicyViolation.exit_code``: the job was killed by seccomp (SIGSYS)."""


def _try(probes: Probes, call: str, *, userns: bool = False) -> tuple[Outcome, Outcome]:
    argv = [*probes.c("try_syscall"), *(["--userns"] if userns else []), call]
    return run_host(argv), run_sandboxed(argv, ro=[probes.directory])


def _assert_host_reaches_kernel(host: Outcome, allowed_errnos: frozenset[str]) -> None:
    assert host.result is not None, host.describe()
    assert host.ok or host.errno in allowed_errnos, (
        f"the unsandboxed control did not reach the kernel: {host.describe()}"
    )


def _assert_sandbox_denies(box: Outcome, expected: str) -> None:
    assert box.result is not None, f"the probe never ran inside the sandbox: {box.describe()}"
    assert not box.ok, f"the attack worked inside the sandbox: {box.describe()}"
    assert box.errno == expected, f"expected {expected} from seccomp: {box.describe()}"


# Calls the unsandboxed control reaches the kernel with: success, or the harmless errno that a
# marker's bad fd/pointer earns once past any filter.
_MARKER_ERRNOS = frozenset({"EBADF", "EFAULT", "EINVAL", "ENOENT", "ENOKEY"})


@pytest.mark.parametrize("call", ["keyctl", "add_key", "request_key_marker"])
def test_kernel_keyring_access_is_blocked_by_seccomp(probes: Probes, call: str) -> None:
    """Attack: read or plant keys in the kernel keyrings (keys are not namespaced; a shared
    session keyring leaks credentials across containers). Control: seccomp deny list -> EPERM.
    Reference: prior-art §4.1 case 14; Docker and Flatpak deny keyctl/add_key/request_key."""
    host, box = _try(probes, call)
    _assert_host_reaches_kernel(host, _MARKER_ERRNOS)
    _assert_sandbox_denies(box, "EPERM")


def test_bpf_program_loading_is_blocked_by_seccomp(probes: Probes) -> None:
    """Attack: bpf(2), the verifier being a standing source of kernel LPEs. Control: seccomp
    -> EPERM (marker: EFAULT when the call reaches the kernel). Reference: §4.1 case 14;
    minijail's default policy denies bpf."""
    host, box = _try(probes, "bpf_marker")
    _assert_host_reaches_kernel(host, _MARKER_ERRNOS)
    _assert_sandbox_denies(box, "EPERM")


def test_perf_event_open_is_blocked_by_seccomp(probes: Probes) -> None:
    """Attack: perf_event_open (side channels, a history of kernel bugs); works unprivileged at
    perf_event_paranoid=2 for one's own user-space counters. Control: seccomp -> EPERM.
    Reference: §4.1 case 14; Docker default profile."""
    host, box = _try(probes, "perf_event_open")
    _assert_host_reaches_kernel(host, frozenset())
    _assert_sandbox_denies(box, "EPERM")


def test_userfaultfd_is_blocked_by_seccomp(probes: Probes) -> None:
    """Attack: userfaultfd, used to stall the kernel at a chosen page fault and win races
    (UFFD_USER_MODE_ONLY needs no privilege). Control: seccomp -> EPERM. Reference: §4.1
    case 14; Docker and firejail deny it."""
    host, box = _try(probes, "userfaultfd")
    _assert_host_reaches_kernel(host, frozenset())
    _assert_sandbox_denies(box, "EPERM")


def test_io_uring_setup_is_blocked_by_seccomp(probes: Probes) -> None:
    """Attack: io_uring, which performs socket/open work without the syscalls the filter sees
    (Codex notes AF_VSOCK sockets through it). Control: seccomp -> EPERM. Reference: §4.1
    case 14; Docker denies io_uring since 2023."""
    host, box = _try(probes, "io_uring_setup")
    _assert_host_reaches_kernel(host, frozenset())
    _assert_sandbox_denies(box, "EPERM")


@pytest.mark.parametrize("call", ["name_to_handle_at", "open_by_handle_at_marker"])
def test_file_handle_escape_is_blocked_by_seccomp(probes: Probes, call: str) -> None:
    """Attack: "shocker": open_by_handle_at opens any inode of a mount by its handle, ignoring
    the mount view the sandbox built. Control: seccomp -> EPERM for both handle calls.
    Reference: §4.1 case 15; firejail/sandlock deny lists."""
    host, box = _try(probes, call)
    _assert_host_reaches_kernel(host, _MARKER_ERRNOS)
    _assert_sandbox_denies(box, "EPERM")


@pytest.mark.parametrize("call", ["unshare_user", "clone_newuser"])
def test_nested_user_namespace_is_blocked_by_seccomp(probes: Probes, call: str) -> None:
    """Attack: create a nested user namespace to regain a full capability set (the usual first
    step of a kernel LPE). Control: seccomp -> EPERM for unshare and for clone with namespace
    flags. Reference: §4.1 case 11; Flatpak denies clone(CLONE_NEWUSER)."""
    host, box = _try(probes, call)
    _assert_host_reaches_kernel(host, frozenset())
    _assert_sandbox_denies(box, "EPERM")


def test_clone3_with_namespace_flags_is_blocked_by_seccomp_enosys(probes: Probes) -> None:
    """Attack: clone3(CLONE_NEWUSER): seccomp cannot read clone_args, so a filter checking only
    clone's flags would let it through. Control: clone3 -> ENOSYS (libc then falls back to
    clone, whose flags are checked). Reference: §1.11; Flatpak CVE-2021-41133."""
    host, box = _try(probes, "clone3_newuser")
    _assert_host_reaches_kernel(host, frozenset())
    _assert_sandbox_denies(box, "ENOSYS")


def test_setns_is_blocked_by_seccomp(probes: Probes) -> None:
    """Attack: setns into another namespace through an fd that leaked in. Control: seccomp
    -> EPERM (marker: EBADF when reaching the kernel). Reference: §4.1 case 11."""
    host, box = _try(probes, "setns_marker")
    _assert_host_reaches_kernel(host, _MARKER_ERRNOS)
    _assert_sandbox_denies(box, "EPERM")


@pytest.mark.parametrize(
    ("call", "userns"),
    [
        ("mount_marker", False),
        ("umount_marker", False),
        ("mount_tmpfs", True),
        ("pivot_root_marker", True),
        ("chroot", True),
    ],
)
def test_mount_and_root_change_are_blocked_by_seccomp(
    probes: Probes, call: str, *, userns: bool
) -> None:
    """Attack: mount over, unmount or pivot away from the view the sandbox built. Control:
    seccomp -> EPERM; the host control gets the capabilities it needs from its own user
    namespace. Reference: §4.1 case 10; Docker, Flatpak deny lists."""
    host, box = _try(probes, call, userns=userns)
    _assert_host_reaches_kernel(host, _MARKER_ERRNOS)
    _assert_sandbox_denies(box, "EPERM")


@pytest.mark.parametrize(
    ("call", "userns"),
    [
        ("fsopen", True),
        ("open_tree", True),
        ("fspick", True),
        ("fsmount_marker", True),
        ("move_mount_marker", True),
        ("mount_setattr_marker", False),
    ],
)
def test_new_mount_api_is_blocked_by_seccomp_enosys(
    probes: Probes, call: str, *, userns: bool
) -> None:
    """Attack: the new mount API (fsopen/fsmount/open_tree/move_mount/fspick/mount_setattr)
    mounts without calling mount(2). Control: seccomp -> ENOSYS. Reference: §1.11; Flatpak
    CVE-2021-41133."""
    host, box = _try(probes, call, userns=userns)
    _assert_host_reaches_kernel(host, _MARKER_ERRNOS)
    _assert_sandbox_denies(box, "ENOSYS")


def test_aslr_disable_via_personality_is_blocked_by_seccomp(probes: Probes) -> None:
    """Attack: personality(ADDR_NO_RANDOMIZE) to make exploits deterministic. Control: seccomp
    allows only the default persona -> EPERM. Reference: Docker/Flatpak personality rules."""
    host, box = _try(probes, "personality_no_aslr")
    _assert_host_reaches_kernel(host, frozenset())
    _assert_sandbox_denies(box, "EPERM")


@pytest.mark.parametrize("call", ["getpid", "personality_query", "clone3_plain"])
def test_ordinary_syscalls_still_work_in_sandbox(probes: Probes, call: str) -> None:
    """Positive control: the filter is a deny list; ordinary calls and a plain clone3 are
    allowed through (clone3 may answer ENOSYS, the fallback signal, never EPERM)."""
    box = run_sandboxed([*probes.c("try_syscall"), call], ro=[probes.directory])
    assert box.result is not None, box.describe()
    if call == "clone3_plain":
        assert box.ok or box.errno == "ENOSYS", box.describe()
    else:
        assert box.ok, box.describe()


def _assert_killed_by_sigsys(box: Outcome, *, started: bool = True) -> None:
    """SIGSYS, reported by the CLI as a policy violation (exit 123); with ``started`` the probe
    must have printed its first line, so the kill came at the attack, not at exec."""
    if started:
        assert box.started, f"the probe never started in the sandbox: {box.describe()}"
    assert box.result is None, f"the foreign-ABI call returned instead: {box.describe()}"
    assert box.returncode == _POLICY_VIOLATION_EXIT or signal_name(box.returncode) == "SIGSYS", (
        box.describe()
    )
    assert "SIGSYS" in box.stderr or signal_name(box.returncode) == "SIGSYS", box.describe()


def test_x32_syscall_is_blocked_by_seccomp_arch_check(probes: Probes) -> None:
    """Attack: getpid with the x32 bit (nr | 0x40000000): a filter matching only x86_64 numbers
    waves it through and the kernel dispatches it when CONFIG_X86_X32_ABI is on. Control:
    seccomp kills the process (SIGSYS). The host control shows the call reaches the kernel
    (a pid, or ENOSYS where the kernel lacks x32). Reference: §1.11; asm/seccomp.h note."""
    host = run_host(probes.c("x32"))
    assert host.result is not None, host.describe()
    assert host.ok or host.errno == "ENOSYS", host.describe()
    _assert_killed_by_sigsys(run_sandboxed(probes.c("x32"), ro=[probes.directory]))


def test_int80_i386_syscall_is_blocked_by_seccomp_arch_check(probes: Probes) -> None:
    """Attack: `int $0x80` from a 64-bit process enters the i386 table (other numbers, e.g.
    socketcall), the classic filter bypass. Control: seccomp checks the audit arch and kills
    (SIGSYS). Reference: §1.11; moby/profiles socketcall bypass."""
    host = run_host(probes.c("int80"))
    assert host.ok, host.describe()
    _assert_killed_by_sigsys(run_sandboxed(probes.c("int80"), ro=[probes.directory]))


def test_i386_process_is_blocked_by_seccomp_arch_check(probes: Probes) -> None:
    """Attack: a genuine 32-bit binary (every syscall under AUDIT_ARCH_I386). Control: seccomp
    kills foreign-arch calls (SIGSYS). Reference: §1.11."""
    if "i386" in probes.missing:
        pytest.skip(probes.missing["i386"])
    host = run_host(probes.c("i386"))
    assert host.ok, host.describe()
    # Every call of a 32-bit process is foreign: it dies at its first one, before main.
    _assert_killed_by_sigsys(run_sandboxed(probes.c("i386"), ro=[probes.directory]), started=False)


@pytest.mark.parametrize("high_bits", [False, True], ids=["plain", "high_bits"])
def test_tiocsti_injection_is_blocked_by_seccomp(probes: Probes, *, high_bits: bool) -> None:
    """Attack: ioctl(TIOCSTI) to type commands into the controlling terminal, with garbage in
    the high 32 bits that the kernel drops but a 64-bit comparison misses. Control: seccomp
    compares the low 32 bits -> EPERM (marker: EBADF when reaching the kernel); the sandbox also
    has no terminal of ours. Reference: §4.1 case 13; CVE-2017-5226, CVE-2019-10063."""
    argv = [*probes.c("tiocsti"), *(["--high-bits"] if high_bits else [])]
    host = run_host(argv)
    assert host.ok, f"TIOCSTI injection did not work on the host: {host.describe()}"
    assert host.result is not None, host.describe()
    assert host.result["marker_errno"] == "EBADF", host.describe()
    box = run_sandboxed(argv, ro=[probes.directory])
    assert box.result is not None, box.describe()
    assert box.result["marker_errno"] == "EPERM", box.describe()
    assert not box.ok, box.describe()

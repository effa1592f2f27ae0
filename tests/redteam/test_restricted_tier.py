"""Red team against the restricted tier (no namespaces: Landlock + seccomp + rlimits).

This is what an operator gets where user namespaces are off. There is no mount view and no pid
or network namespace, so every attack here meets Landlock (EACCES, or EPERM for its scoping) or
seccomp (EPERM) and nothing else. Each runs on the host first, where it works.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.redteam._harness import Listener, Outcome, Probes, run_host, run_sandboxed

from auto_review.sandbox import Tier, _scratch, landlock, run_command, run_policy
from auto_review.sandbox.errors import SandboxPolicyInvalid, SandboxSetupError

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox]

Serve = Callable[..., Listener]


def _restricted(probes: Probes, python_view: tuple[Path, ...], argv: list[str]) -> Outcome:
    return run_sandboxed(argv, ro=[probes.directory, *python_view], isolation="restricted")


def _assert_host_then_denied(host: Outcome, box: Outcome, expected: frozenset[str]) -> None:
    assert host.ok, f"the unsandboxed control failed: {host.describe()}"
    assert box.result is not None, f"the probe never ran inside the sandbox: {box.describe()}"
    assert not box.ok, f"the attack worked in the restricted tier: {box.describe()}"
    assert box.errno in expected, f"expected one of {sorted(expected)}: {box.describe()}"


_JOB_USER_AS_ROOT = 65534
"""The host uid of a job that root starts in this tier (identity.py; F11)."""


@pytest.fixture
def job_dir() -> Iterator[Path]:
    """A writable dir for the job: as root, owned by host nobody, the job's own identity here
    (no user namespace maps it), outside root's closed home; otherwise a dir of ours."""
    base = Path("/var/tmp") if os.geteuid() == 0 else Path.home()
    path = Path(tempfile.mkdtemp(prefix=".ar-redteam-job-", dir=base))
    if os.geteuid() == 0:
        os.chown(path, _JOB_USER_AS_ROOT, _JOB_USER_AS_ROOT)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def host_tmp_secret() -> Iterator[Path]:
    """A file another process of ours left in the host's /tmp."""
    fd, name = tempfile.mkstemp(prefix="ar-redteam-tmp-secret-", dir="/tmp")
    os.write(fd, b"ar-redteam tmp secret\n")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        os.unlink(name)


def test_selfcheck_shows_no_new_privs_seccomp_and_no_caps_in_restricted_tier(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Check: without /proc access the job reads prctl and capget: no_new_privs 1, seccomp
    mode 2, CapEff 0 (the host control differs in no_new_privs and seccomp)."""
    host = run_host([*probes.pyprobe, "selfcheck"])
    assert host.result is not None, host.describe()
    assert (host.result["no_new_privs"], host.result["seccomp"]) == (0, 0), host.describe()
    box = _restricted(probes, python_view, [*probes.pyprobe, "selfcheck"])
    assert box.result is not None, box.describe()
    assert box.result["no_new_privs"] == 1, box.describe()
    assert box.result["seccomp"] == 2, box.describe()
    assert box.result["cap_eff"] == 0, box.describe()


def test_host_file_read_in_restricted_tier_is_blocked_by_landlock(
    probes: Probes, python_view: tuple[Path, ...], fake_home: Path, host_tmp_secret: Path
) -> None:
    """Attack: read the operator's key and a file in the host's /tmp (the restricted tier has
    no private /tmp). Control: Landlock read rules -> EACCES. Reference: §4.1 case 1; E7."""
    for path in (fake_home / ".ssh" / "id_ed25519", host_tmp_secret):
        argv = [*probes.pyprobe, "read", str(path)]
        host, box = run_host(argv), _restricted(probes, python_view, argv)
        _assert_host_then_denied(host, box, frozenset({"EACCES"}))


def test_host_process_environ_read_in_restricted_tier_is_blocked_by_landlock(
    probes: Probes, python_view: tuple[Path, ...], host_sleeper: subprocess.Popen[bytes]
) -> None:
    """Attack: read /proc/<pid>/environ of a host process (no pid namespace in this tier).
    Control: /proc is outside the Landlock read rules -> EACCES. Reference: §4.1 case 1."""
    argv = [*probes.pyprobe, "read", f"/proc/{host_sleeper.pid}/environ"]
    host, box = run_host(argv), _restricted(probes, python_view, argv)
    _assert_host_then_denied(host, box, frozenset({"EACCES"}))


def test_write_into_home_in_restricted_tier_is_blocked_by_landlock(
    probes: Probes, python_view: tuple[Path, ...], fake_home: Path
) -> None:
    """Attack: drop a file into the operator's home. Control: Landlock write rules -> EACCES.
    Reference: §4.1 case 3."""
    target = fake_home / ".profile"
    argv = [*probes.pyprobe, "write", str(target)]
    host = run_host(argv)
    target.unlink()
    box = _restricted(probes, python_view, argv)
    _assert_host_then_denied(host, box, frozenset({"EACCES"}))
    assert not target.exists()


def test_host_process_attack_in_restricted_tier_is_blocked_by_seccomp_and_landlock_scope(
    probes: Probes, python_view: tuple[Path, ...], host_sleeper: subprocess.Popen[bytes]
) -> None:
    """Attack: ptrace or SIGKILL a host process of the same uid (no pid namespace hides it
    here). Control: seccomp denies ptrace (EPERM); Landlock signal scoping (ABI >= 6) refuses
    the signal (EPERM); the victim survives. Reference: §4.1 cases 7 and 17."""
    attach = [*probes.c("attach"), "ptrace", str(host_sleeper.pid)]
    host, box = run_host(attach), _restricted(probes, python_view, attach)
    _assert_host_then_denied(host, box, frozenset({"EPERM"}))
    if landlock.abi_version() < 6:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 6 has no signal scoping")
    host = run_host([*probes.pyprobe, "kill", str(host_sleeper.pid), "0"])
    box = _restricted(probes, python_view, [*probes.pyprobe, "kill", str(host_sleeper.pid), "9"])
    _assert_host_then_denied(host, box, frozenset({"EPERM"}))
    assert host_sleeper.poll() is None


def test_abstract_socket_connect_in_restricted_tier_is_blocked_by_landlock_scope(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Attack: connect to a host daemon's abstract unix socket (same network namespace in this
    tier). Control: Landlock abstract-socket scoping (ABI >= 6) -> EPERM.
    Reference: §4.1 case 5; E7."""
    if landlock.abi_version() < 6:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 6 cannot scope abstract sockets")
    listener = serve("abstract")
    argv = [*probes.pyprobe, "unix", str(listener.address)]
    host = run_host(argv)
    seen = len(listener.received)
    _assert_host_then_denied(host, _restricted(probes, python_view, argv), frozenset({"EPERM"}))
    assert len(listener.received) == seen


def test_tcp_to_host_loopback_in_restricted_tier_is_blocked_by_seccomp(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Attack: reach a host service on 127.0.0.1 (this tier shares the host network).
    Control: the `run` policy's socket-family allowlist -> EPERM (Landlock's TCP rule would say
    EACCES behind it). Reference: §4.1 case 4."""
    listener = serve("tcp")
    argv = [*probes.pyprobe, "tcp", "127.0.0.1", str(listener.port)]
    host = run_host(argv)
    seen = len(listener.received)
    _assert_host_then_denied(host, _restricted(probes, python_view, argv), frozenset({"EPERM"}))
    assert len(listener.received) == seen


def test_path_socket_connect_in_restricted_tier_is_blocked_by_socket_rules(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve, fake_home: Path
) -> None:
    """Attack: connect to a host daemon's socket file (docker.sock, the D-Bus system bus, an
    ssh-agent): the classic escape from a sandbox without a mount namespace. Control expected:
    seccomp refusing socket(AF_UNIX) for a policy that needs no unix clients (EPERM), or
    Landlock's pathname-socket right where the kernel has ABI >= 9 (EACCES).
    Reference: §4.1 case 5; §1.11 (ABI 9 = pathname UDS); docs/dev/REDTEAM-FINDINGS.md F4."""
    listener = serve("unix", fake_home / "daemon.sock")
    argv = [*probes.pyprobe, "unix", str(listener.address)]
    host = run_host(argv)
    seen = len(listener.received)
    box = _restricted(probes, python_view, argv)
    _assert_host_then_denied(host, box, frozenset({"EPERM", "EACCES"}))
    assert len(listener.received) == seen, "the host daemon accepted the sandbox's connection"


def test_socketpair_still_works_in_restricted_tier(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Positive control: a unix socketpair (no path, no peer outside) stays available."""
    box = _restricted(probes, python_view, [*probes.pyprobe, "socketpair"])
    assert box.ok, box.describe()


def test_dropped_payload_execve_in_restricted_tier_is_blocked_by_landlock(
    probes: Probes, python_view: tuple[Path, ...], job_dir: Path
) -> None:
    """Attack: write a payload into the writable dir and execve it. Control: Landlock grants no
    EXECUTE under write paths -> EACCES (there is no noexec mount in this tier). The host
    control runs it. Reference: landlock.py ("closes: drop a payload, then run it")."""
    argv = [*probes.pyprobe, "dropexec", str(probes.binaries["euid"]), str(job_dir), "exec"]
    host = run_host(argv)
    box = run_sandboxed(
        argv, ro=[probes.directory, *python_view], rw=[job_dir], isolation="restricted"
    )
    _assert_host_then_denied(host, box, frozenset({"EACCES"}))


def test_dropped_payload_via_loader_is_blocked_by_noexec_in_full_tier_and_reported_in_restricted(
    probes: Probes, python_view: tuple[Path, ...], scratch: Path, job_dir: Path
) -> None:
    """Attack: run a dropped payload through the dynamic loader (`ld.so payload`), which maps
    it with mmap(PROT_EXEC) instead of execve. Full tier: the writable mount is noexec, so the
    loader's mmap fails ("failed to map segment"). Restricted tier: no control exists here
    (Landlock governs execve, not mmap; SECBIT_EXEC_RESTRICT_FILE is advisory and Debian 12's
    ld.so ignores it; a noexec mount needs a mount namespace), so the product promises only to
    say so: the job's own posture reports `noexec_writable` off, naming ld.so and the path,
    exactly when the payload runs. The host control runs it. Reference: landlock.py;
    docs/dev/REDTEAM-FINDINGS.md F6 (accepted: kernel limit, reported)."""
    argv = [*probes.pyprobe, "dropexec", str(probes.binaries["euid"])]
    host = run_host([*argv, str(scratch), "ldso"])
    assert host.ok, f"the unsandboxed control failed: {host.describe()}"
    full = run_sandboxed(
        [*argv, str(scratch), "ldso"], ro=[probes.directory, *python_view], rw=[scratch]
    )
    assert full.result is not None, full.describe()
    assert not full.ok, f"the full tier ran the payload through ld.so: {full.describe()}"
    assert "failed to map segment" in str(full.result["output"]), full.describe()

    policy = run_policy(ro=[str(probes.directory), *map(str, python_view)], rw=[str(job_dir)])
    done = run_command([*argv, str(job_dir), "ldso"], policy, isolation=Tier.RESTRICTED, timeout=60)
    verdict = json.loads(done.stdout.decode().strip().splitlines()[-1])
    control = next(c for c in done.posture.controls if c.name == "noexec_writable")
    assert verdict["ok"] == (control.state == "off"), f"{verdict} vs {control}"
    if control.state == "off":
        assert "ld.so" in control.reason, control
        assert str(job_dir) in control.reason, control


def _swap_for_symlink(path: Path, target: Path) -> None:
    """What a concurrent writer of the job dir does between the check and the use."""
    path.rmdir()
    path.symlink_to(target)


@pytest.mark.parametrize("tier", ["full", "restricted"])
def test_symlink_swapped_in_after_the_check_is_blocked_by_nofollow_open(
    probes: Probes, python_view: tuple[Path, ...], job_dir: Path, fake_home: Path, tier: str
) -> None:
    """Attack (time of check to time of use): the writable job dir is a real directory when
    the policy is validated, and a symlink to the operator's home by the time the sandbox
    opens it (the gateway, or another job, can write there concurrently; the job server
    validates before it forks). Control expected: the sandbox opens job paths itself without
    following symlinks (openat2 RESOLVE_NO_SYMLINKS): the full tier's bind does; the restricted
    tier's Landlock rule does too (refused as a policy error, exit 125). Either the setup is
    refused or the write is denied, and the home stays untouched. The host control writes
    through the link.
    Reference: runc CVE-2021-30465; §4.1 case 30; docs/dev/REDTEAM-FINDINGS.md F10."""
    job = job_dir / "job"
    job.mkdir()
    target = fake_home / "dropped-by-job"
    argv = [*probes.pyprobe, "write", str(job / "dropped-by-job")]
    policy = run_policy(ro=[str(probes.directory), *map(str, python_view)], rw=[str(job)])
    _swap_for_symlink(job, fake_home)
    host = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert '"ok": true' in host.stdout, host.stdout + host.stderr
    target.unlink()
    refused, output = "", ""
    try:
        output = run_command(argv, policy, isolation=Tier(tier), timeout=60).stdout.decode()
    except (SandboxSetupError, SandboxPolicyInvalid) as exc:
        refused = exc.message
    assert not target.exists(), "the job wrote into the operator's home through the swap"
    if refused:
        assert "ELOOP" in refused or "symlink" in refused, refused
    else:
        assert '"ok": false' in output, output


def _as_job_user(argv: list[str]) -> list[str]:
    """ARGV run on the host as the uid a restricted-tier job has (root: host nobody, F11)."""
    if os.geteuid() != 0:
        return argv
    uid = str(_JOB_USER_AS_ROOT)
    return ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", *argv]


@pytest.mark.parametrize(("kind", "expected"), [("shm", "EPERM"), ("mq", "EACCES")])
def test_host_ipc_of_the_same_uid_in_restricted_tier_is_blocked_by_seccomp_and_landlock(
    probes: Probes, kind: str, expected: str
) -> None:
    """Attack: read what a process of the job's own host uid left in SysV shared memory or a
    POSIX message queue: another restricted job's, as host nobody when root starts them, or
    the operator's applications' otherwise (mode 0600 objects). This tier has no IPC namespace.
    Control: SysV IPC is named by number, where Landlock's path rules do not reach, so seccomp
    refuses it in this tier (EPERM; it did not: the shm case read the segment); a message queue
    is a file of the kernel's mqueue mount, outside every Landlock rule (EACCES; pins current
    behaviour). The host control reads the object as the same uid; the full tier's IPC
    namespace has its own test."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("util-linux setpriv is needed to leave the object as host nobody")
    secret = "ar-redteam-ipc-" + os.urandom(6).hex()
    name = "/ar-redteam-" + os.urandom(6).hex()
    hostipc = probes.c("hostipc")

    def create() -> str:
        made = run_host(_as_job_user([*hostipc, "create", kind, name, secret]))
        assert made.lines, made.describe()
        return name if kind == "mq" else str(made.lines[-1]["id"])

    ident = create()
    try:
        host = run_host(_as_job_user([*hostipc, "read", kind, ident, secret]))
        assert host.ok, host.describe()
        if kind == "mq":  # the control's read took the message: leave another
            run_host([*hostipc, "remove", kind, ident])
            ident = create()
        box = run_sandboxed(
            [*hostipc, "read", kind, ident, secret], ro=[probes.directory], isolation="restricted"
        )
        assert box.result is not None, box.describe()
        assert not box.ok, box.describe()
        assert box.errno == expected, box.describe()
    finally:
        run_host([*hostipc, "remove", kind, ident])


def test_scratch_dir_shaped_against_cleanup_is_removed_anyway(
    probes: Probes, python_view: tuple[Path, ...], tmp_path: Path
) -> None:
    """Attack: a restricted-tier job shapes its scratch dir (this tier's private /tmp, removed
    by the caller afterwards) against the removal: a directory chained 3000 deep made the
    caller's shutil.rmtree raise RecursionError (the job's result lost, the dir left, a
    gateway's job server request failed), and a mode-000 directory made it give up (as an
    ordinary user, up to the disk cap left in /tmp after each job). Control: an iterative,
    no-follow removal that restores its owner's rwx; the run ends normally and the dir is gone.
    The host control shows the same tree defeating shutil.rmtree."""
    argv = [*probes.pyprobe, "scratchtrap"]
    trap = tmp_path / "host-scratch"
    trap.mkdir()
    try:
        host = run_host([*argv, str(trap), "3000"])
        assert host.ok, host.describe()
        with contextlib.suppress(RecursionError):
            shutil.rmtree(trap, ignore_errors=True)
        assert trap.exists(), "control: shutil.rmtree removed the shaped tree"
    finally:
        # Left in tmp_path, the tree would crash a later pytest session's own cleanup.
        assert _scratch.remove_tree(str(trap))
    box = _restricted(probes, python_view, [*argv, "", "3000"])
    assert box.returncode == 0, box.describe()
    assert box.ok, box.describe()
    assert box.result is not None
    left = Path(str(box.result["directory"]))
    assert left.name.startswith("auto-review-scratch-"), box.describe()
    assert not os.path.lexists(left), f"the job's scratch dir {left} was left behind"

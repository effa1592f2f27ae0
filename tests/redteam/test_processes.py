"""Red team: other processes, inherited state and identity (prior-art §4.1 cases 7, 9, 12,
17, 22, 24, 25, 28).

Targets on the host are processes the test starts under its own uid, so every unsandboxed
control works without privileges.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import tty
from pathlib import Path

import pytest
from tests.redteam._harness import CLI, Outcome, Probes, run_host, run_sandboxed, sandbox_argv

from auto_review.sandbox import landlock, run_callable, run_policy

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox]


def _assert_denied(box: Outcome, expected: frozenset[str]) -> None:
    assert box.result is not None, f"the probe never ran inside the sandbox: {box.describe()}"
    assert not box.ok, f"the attack worked inside the sandbox: {box.describe()}"
    assert box.errno in expected, f"expected one of {sorted(expected)}: {box.describe()}"


def _assert_memory_reachable_only_on_host(host: Outcome, box: Outcome) -> None:
    assert host.result is not None, host.describe()
    assert host.result["access"], f"the host control could not reach the memory: {host.describe()}"
    assert box.result is not None, f"the probe never ran inside the sandbox: {box.describe()}"
    assert not box.result["access"], f"the attack worked inside the sandbox: {box.describe()}"
    assert box.errno == "EPERM", f"expected EPERM from seccomp: {box.describe()}"


@pytest.mark.parametrize("mode", ["ptrace", "vm_readv"])
def test_host_process_memory_access_is_blocked_by_seccomp(
    probes: Probes, host_sleeper: subprocess.Popen[bytes], mode: str
) -> None:
    """Attack: ptrace(PTRACE_SEIZE) or process_vm_readv a host process of the same uid (the
    launcher, a shell holding tokens). Control: seccomp denies ptrace and process_vm_* ->
    EPERM, before the pid namespace would even answer ESRCH. Reference: §4.1 case 7;
    CVE-2017-5206 class; Codex seccomp."""
    argv = [*probes.c("attach"), mode, str(host_sleeper.pid)]
    _assert_memory_reachable_only_on_host(
        run_host(argv), run_sandboxed(argv, ro=[probes.directory])
    )


@pytest.mark.parametrize("mode", ["ptrace", "vm_readv"])
def test_child_process_memory_access_is_blocked_by_seccomp(probes: Probes, mode: str) -> None:
    """Attack: debug one's own child (always allowed on a bare host), the building block of
    ptrace-based seccomp bypasses on old kernels. Control: seccomp -> EPERM. Reference: §4.1
    case 7; CVE-2017-5206."""
    argv = [*probes.c("attach"), mode, "child"]
    _assert_memory_reachable_only_on_host(
        run_host(argv), run_sandboxed(argv, ro=[probes.directory])
    )


def test_host_proc_mem_open_is_blocked_by_pid_namespace(
    probes: Probes, host_sleeper: subprocess.Popen[bytes]
) -> None:
    """Attack: open /proc/<pid>/mem of a host process. Control: fresh /proc of a new pid
    namespace -> ENOENT. Reference: §4.1 case 7."""
    argv = [*probes.c("attach"), "proc_mem", str(host_sleeper.pid)]
    host = run_host(argv)
    assert host.ok, host.describe()
    _assert_denied(run_sandboxed(argv, ro=[probes.directory]), frozenset({"ENOENT"}))


@pytest.mark.parametrize("mode", ["ptrace", "proc_mem"])
def test_supervisor_memory_access_is_blocked_by_seccomp_and_dumpable(
    probes: Probes, mode: str
) -> None:
    """Attack: attach to, or open /proc/<ppid>/mem of, the process that launched us (inside:
    the supervisor; outside: the CLI). Control: ptrace is denied by seccomp (EPERM); the
    supervisor's /proc entry is absent or not dumpable (ENOENT/EACCES). Reference: §4.1 case 7;
    runc CVE-2019-5736 (reaching the runtime through /proc)."""
    argv = [*probes.c("attach"), mode, "parent"]
    host = run_host(argv)
    assert host.ok, host.describe()
    box = run_sandboxed(argv, ro=[probes.directory])
    expected = {"ptrace": frozenset({"EPERM"}), "proc_mem": frozenset({"ENOENT", "EACCES"})}
    _assert_denied(box, expected[mode])


def test_inherited_directory_fd_is_blocked_by_fd_closing(
    probes: Probes, python_view: tuple[Path, ...], fake_home: Path
) -> None:
    """Attack: use a host directory fd inherited without O_CLOEXEC to fchdir out of the new
    root ("Leaky Vessels"). Control: every fd but stdio is closed before exec -> EBADF, and
    /proc/self/fd lists only 0-2 (plus the probe's own). Reference: §4.1 case 9; runc
    CVE-2024-21626."""
    fd = os.open(fake_home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.set_inheritable(fd, True)
        argv = [*probes.pyprobe, "fds", str(fd)]
        host = run_host(argv, pass_fds=[fd])
        assert host.result is not None, host.describe()
        assert ".ssh" in host.result["names"], host.describe()
        box = run_sandboxed(argv, ro=[probes.directory, *python_view], pass_fds=[fd])
        _assert_denied(box, frozenset({"EBADF"}))
        assert box.result is not None
        assert fd not in box.result["fds"], box.describe()
    finally:
        os.close(fd)


def test_signal_to_host_process_is_blocked_by_pid_namespace(
    probes: Probes, python_view: tuple[Path, ...], host_sleeper: subprocess.Popen[bytes]
) -> None:
    """Attack: SIGKILL a host process of the same uid (the gateway, the operator's shell).
    Control: it has no pid in the sandbox's pid namespace -> ESRCH (Landlock signal scoping
    would say EPERM); the victim survives. The host control uses signal 0 (no harm).
    Reference: §4.1 case 17; sandlock test_landlock signals."""
    host = run_host([*probes.pyprobe, "kill", str(host_sleeper.pid), "0"])
    assert host.ok, host.describe()
    box = run_sandboxed(
        [*probes.pyprobe, "kill", str(host_sleeper.pid), "9"], ro=[probes.directory, *python_view]
    )
    _assert_denied(box, frozenset({"ESRCH", "EPERM"}))
    assert host_sleeper.poll() is None, "the host process was killed from inside the sandbox"


def test_signal_to_supervisor_is_blocked_by_landlock_signal_scope(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: signal the parent, which inside is the supervisor (pid 1 of the job's pid
    namespace, holding the namespace's capabilities; its SIGALRM handler is the deadline).
    Probed with signal 0. Control: Landlock signal scoping (ABI >= 6) -> EPERM: the job may
    signal only processes of its own Landlock domain. The host control signals its own parent.
    Reference: §1.11 (ABI 6 scoping); E7; sandlock test_landlock."""
    if landlock.abi_version() < 6:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 6 has no signal scoping")
    argv = [*probes.pyprobe, "killparent"]
    host = run_host(argv)
    assert host.ok, host.describe()
    _assert_denied(run_sandboxed(argv, ro=[probes.directory, *python_view]), frozenset({"EPERM"}))


def _signalled(mark: Path, bound_s: float = 5.0) -> bool:
    """Whether the victim recorded the signal within a bounded wait."""
    deadline = time.monotonic() + bound_s
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return mark.exists()


@pytest.mark.parametrize("tier", ["full", "restricted"])
def test_kill_everyone_is_blocked_by_pid_namespace_and_landlock_scope(
    probes: Probes,
    python_view: tuple[Path, ...],
    signal_victim: tuple[subprocess.Popen[bytes], Path],
    tier: str,
) -> None:
    """Attack: kill(-1, sig), every process we may signal. The signal is SIGURG (ignored by
    default: a broken sandbox harms nobody) and a host victim records it, because kill(-1)
    answers 0 even when every target refused. Control: full tier, a pid namespace holding only
    the sandbox (ESRCH); restricted tier, Landlock signal scoping (each target refused). The
    host control reaches the victim. Reference: §4.1 case 17; kernel/signal.c."""
    victim, mark = signal_victim
    argv = [*probes.pyprobe, "kill", "-1", str(int(signal.SIGURG))]
    host = run_host(argv)
    assert host.ok, host.describe()
    assert _signalled(mark), "the host control did not reach the victim"
    mark.unlink()
    box = run_sandboxed(argv, ro=[probes.directory, *python_view], isolation=tier)
    assert box.result is not None, box.describe()
    if tier == "full":
        assert box.errno == "ESRCH", box.describe()
    assert not _signalled(mark), "the victim on the host got the sandbox's signal"
    assert victim.poll() is None


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # The launcher and its forks (outer, supervisor) carry the job's argv too; count only
        # the probe's own processes.
        if token.encode() in cmdline and b"auto_review" not in cmdline:
            found.append(int(entry.name))
    return found


def _wait_until_gone(token: str, bound_s: float = 10.0) -> list[int]:
    """Poll (bounded) for processes carrying TOKEN; returns the survivors at the end."""
    deadline = time.monotonic() + bound_s
    while (survivors := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return survivors


@pytest.mark.parametrize("isolation", ["full", "restricted"])
def test_surviving_daemon_is_blocked_by_tree_kill(
    probes: Probes, python_view: tuple[Path, ...], isolation: str
) -> None:
    """Attack: double-fork + setsid a daemon that keeps working after the job "ended".
    Control: the job runs in its own pid namespace whose init's exit kills everything in it;
    in the restricted tier the supervisor, a child subreaper, kills every descendant.
    The host control shows the same daemon does survive without the sandbox.
    Reference: §4.1 case 22; srt "no orphans" tests."""
    token = "ar-redteam-daemon-" + secrets.token_hex(6)
    argv = [*probes.pyprobe, "daemon", token, "30"]
    host = run_host(argv)
    try:
        assert host.ok, host.describe()
        assert _processes_with(token), "the unsandboxed daemon did not survive its parent"
    finally:
        for pid in _processes_with(token):
            os.kill(pid, 9)
    assert not _wait_until_gone(token)
    box = run_sandboxed(argv, ro=[probes.directory, *python_view], isolation=isolation)
    try:
        assert box.ok, box.describe()
        survivors = _wait_until_gone(token)
        assert not survivors, f"daemon(s) {survivors} outlived the sandbox"
    finally:
        for pid in _processes_with(token):
            os.kill(pid, 9)


@pytest.fixture
def sysv_segment() -> object:
    """A SysV shared memory segment on the host, keyed by a random key; removed afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    key = secrets.randbelow(1 << 30) + 1
    shmid = libc.shmget(ctypes.c_int(key), ctypes.c_size_t(4096), ctypes.c_int(0o1600))
    assert shmid >= 0, os.strerror(ctypes.get_errno())
    yield key
    libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(0), None)  # IPC_RMID


def test_host_sysv_shm_access_is_blocked_by_ipc_namespace(
    probes: Probes, python_view: tuple[Path, ...], sysv_segment: int
) -> None:
    """Attack: attach the host's SysV shared memory (IPC objects are keyed globally).
    Control: ipc namespace -> ENOENT. Reference: §4.1 case 24; Docker namespaces."""
    argv = [*probes.pyprobe, "shm", str(sysv_segment)]
    host = run_host(argv)
    assert host.ok, host.describe()
    _assert_denied(run_sandboxed(argv, ro=[probes.directory, *python_view]), frozenset({"ENOENT"}))


def test_hostname_change_is_blocked_by_uts_namespace(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: learn the host's name, and change it (host-wide without a uts namespace).
    Control: a uts namespace of its own (the job sees the sandbox's name, not the host's), and
    seccomp plus the missing CAP_SYS_ADMIN refuse sethostname (EPERM). The host control changes
    it only inside a private user+uts namespace (never the real host). Reference: §4.1 case 24."""
    host_uts = os.readlink("/proc/self/ns/uts")
    host = run_host([*probes.pyprobe, "hostname", host_uts, "--userns"])
    assert host.ok, host.describe()
    box = run_sandboxed(
        [*probes.pyprobe, "hostname", host_uts], ro=[probes.directory, *python_view]
    )
    _assert_denied(box, frozenset({"EPERM"}))
    assert box.result is not None
    assert box.result["before"] != socket.gethostname(), "the job sees the host's name"


def _status(outcome: Outcome) -> dict[str, object]:
    assert outcome.result is not None, outcome.describe()
    assert outcome.ok, outcome.describe()
    return outcome.result


def test_sandboxed_process_has_no_new_privs_seccomp_and_no_capabilities(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Check: /proc/self/status inside reads NoNewPrivs 1, Seccomp 2 and zero capability sets,
    and every namespace id differs from the host's. The host control reads the same fields
    and must show the difference (NoNewPrivs 0, host namespaces). Reference: §4.1 case 25;
    Codex NNP test."""
    argv = [*probes.pyprobe, "status"]
    host = _status(run_host(argv))
    box = _status(run_sandboxed(argv, ro=[probes.directory, *python_view]))
    host_status, box_status = host["status"], box["status"]
    assert isinstance(host_status, dict)
    assert isinstance(box_status, dict)
    assert host_status["NoNewPrivs"] == "0", host
    assert box_status["NoNewPrivs"] == "1", box
    assert box_status["Seccomp"] == "2", box
    for key in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
        assert int(str(box_status[key]), 16) == 0, (key, box)
    host_ns, box_ns = host["ns"], box["ns"]
    assert isinstance(host_ns, dict)
    assert isinstance(box_ns, dict)
    for ns in ("user", "mnt", "pid", "net", "ipc", "uts"):
        assert box_ns[ns] != host_ns[ns], (ns, box_ns, host_ns)


def test_host_root_identity_is_blocked_by_user_namespace_mapping(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Check: whatever uid the job has inside, the user namespace maps it to a host uid that is
    not 0, so a file owned by host root in a writable bind stays out of reach even by DAC.
    Reference: §2 parity checklist ("userns mapping to an unprivileged id"); §7 Tier A."""
    box = _status(run_sandboxed([*probes.pyprobe, "status"], ro=[probes.directory, *python_view]))
    status, uid_map = box["status"], box["uid_map"]
    assert isinstance(status, dict)
    assert isinstance(uid_map, list)
    uid = int(str(status["Uid"]).split()[1])  # effective uid inside
    outside = [int(o) + uid - int(i) for i, o, n in uid_map if int(i) <= uid < int(i) + int(n)]
    assert outside, f"uid {uid} is not mapped: {uid_map}"
    assert outside[0] != 0, f"the job runs as host root through the map {uid_map}"


def test_environment_secret_leak_is_blocked_by_env_allowlist(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: read tokens from the environment (LLM keys, forge tokens). Control: the child
    environment is rebuilt from an allowlist. Reference: §4.1 case 28."""
    marker = "ar-fake-token-" + secrets.token_hex(8)
    env = {**os.environ, "AR_FORGE_TOKEN": marker, "OPENAI_API_KEY": marker}
    argv = [*probes.pyprobe, "env", marker]
    host = run_host(argv, env=env)
    assert host.ok, host.describe()
    box = run_sandboxed(argv, ro=[probes.directory, *python_view], env=env)
    assert box.result is not None, box.describe()
    assert not box.ok, f"leaked: {box.result.get('leaked')}"


def test_setuid_privilege_gain_is_blocked_by_no_new_privs(probes: Probes, scratch: Path) -> None:
    """Attack: exec a set-user-ID executable to change identity. Control: no_new_privs (and
    nosuid binds, and an owner unmapped in the user namespace) keep the effective uid.
    Reference: §4.1 case 12; bubblewrap README; jailcheck."""
    if os.geteuid() != 0:
        pytest.skip(
            f"as uid {os.geteuid()} the test cannot create a set-user-ID executable "
            "owned by another user, and no host setuid binary reports its euid; the "
            "root run covers it"
        )
    target_uid = 65534
    directory = scratch / "suid"
    directory.mkdir()
    directory.chmod(0o755)
    binary = directory / "euid"
    shutil.copy(probes.binaries["euid"], binary)
    os.chown(binary, target_uid, target_uid)
    binary.chmod(0o4755)
    host = run_host([str(binary)])
    assert host.result is not None, host.describe()
    assert host.result["euid"] == target_uid, (
        f"the set-user-ID control did not change the euid on the host: {host.describe()}"
    )
    box = run_sandboxed([str(binary)], ro=[directory])
    assert box.result is not None, box.describe()
    assert box.result["euid"] == box.result["uid"], box.describe()


def _spawn_cli(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_until_present(token: str, count: int, bound_s: float = 30.0) -> list[int]:
    """Poll (bounded) until COUNT processes carry TOKEN; returns those found at the end."""
    deadline = time.monotonic() + bound_s
    while len(found := _processes_with(token)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def _parent_of(pid: int) -> int:
    """PID's parent as the host sees it (also for a process in a pid namespace)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("isolation", ["full", "restricted"])
@pytest.mark.parametrize("killed", ["launcher", "supervisor"])
def test_orphaned_sandbox_is_blocked_by_parent_death_signals(
    probes: Probes, python_view: tuple[Path, ...], isolation: str, killed: str
) -> None:
    """Attack: keep a job (and a daemon it forked) running after the launcher, or the
    supervisor alone, was killed, so nobody enforces its deadline any more. Control: parent-death
    signals down the chain (launcher -> outer -> supervisor -> job) and the pid namespace; in
    the restricted tier, without one, the outer child's death asks the supervisor (a child
    subreaper) to kill the tree, and the outer child, a subreaper too, kills the orphans of a
    supervisor killed alone. The host control shows the same processes survive a killed parent.
    Reference: bubblewrap --die-with-parent; srt "no orphans"."""
    token = "ar-redteam-orphan-" + secrets.token_hex(6)
    argv = [*probes.pyprobe, "linger", token, "30"]
    launcher = _spawn_cli(argv)
    try:
        assert len(_wait_until_present(token, 2)) >= 2, "the unsandboxed lingerer never started"
        launcher.kill()
        launcher.wait()
        time.sleep(0.5)
        assert _processes_with(token), "the control's children died with it: nothing to prove"
    finally:
        for pid in _processes_with(token):
            os.kill(pid, 9)
    assert not _wait_until_gone(token)

    box_argv = sandbox_argv(argv, ro=[probes.directory, *python_view], isolation=isolation)
    launcher = _spawn_cli(box_argv)
    try:
        found = _wait_until_present(token, 2)
        assert len(found) >= 2, "the sandboxed lingerer never started"
        target = launcher.pid if killed == "launcher" else _parent_of(min(found))
        assert b"auto_review" in Path(f"/proc/{target}/cmdline").read_bytes()
        os.kill(target, 9)
        survivors = _wait_until_gone(token)
        assert not survivors, f"{survivors} outlived the killed {killed} ({isolation} tier)"
    finally:
        for pid in _processes_with(token):
            os.kill(pid, 9)
        launcher.kill()
        launcher.wait()


@pytest.mark.parametrize("isolation", ["full", "restricted"])
def test_daemon_outliving_deadline_is_blocked_by_tree_kill(
    probes: Probes, python_view: tuple[Path, ...], isolation: str
) -> None:
    """Attack: double-fork a daemon and outlive the wall-clock deadline with it. Control: at
    the deadline the supervisor kills every descendant and the pid namespace goes with it; the
    CLI exits 121. Reference: §4.1 cases 21-22; Codex timeout test."""
    token = "ar-redteam-deadline-" + secrets.token_hex(6)
    box = run_sandboxed(
        [*probes.pyprobe, "linger", token, "60"],
        ro=[probes.directory, *python_view],
        timeout_s=2,
        isolation=isolation,
    )
    try:
        assert box.returncode == 121, box.describe()
        assert box.started, f"the job never ran: {box.describe()}"
        survivors = _wait_until_gone(token)
        assert not survivors, f"{survivors} outlived the deadline"
    finally:
        for pid in _processes_with(token):
            os.kill(pid, 9)


@pytest.mark.parametrize("high_bits", [False, True], ids=["plain", "high_bits"])
def test_tiocsti_into_operator_terminal_is_blocked_by_seccomp_and_setsid(
    probes: Probes, python_view: tuple[Path, ...], *, high_bits: bool
) -> None:
    """Attack: the job's stdin is the operator's terminal (`auto-review sandbox run` in a
    shell); it types a command into it with TIOCSTI, which the shell would run after the job
    exits. Control: the job is not in the terminal's session (setsid) and seccomp refuses
    TIOCSTI -> EPERM; the terminal's input queue stays empty. The host control, a session
    leader on the same kind of pty, injects a byte. Reference: §4.1 case 13; CVE-2017-5226."""
    argv = [*probes.pyprobe, "inject_stdin", *(["--high-bits"] if high_bits else [])]
    for sandboxed in (False, True):
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            if sandboxed:
                outcome = run_sandboxed(argv, ro=[probes.directory, *python_view], stdin=slave)
            else:
                outcome = run_host(argv, stdin=slave)
            os.set_blocking(slave, False)
            try:
                queued = os.read(slave, 16)
            except BlockingIOError:
                queued = b""
        finally:
            os.close(master)
            os.close(slave)
        assert outcome.result is not None, outcome.describe()
        if sandboxed:
            assert not outcome.ok, outcome.describe()
            assert outcome.errno == "EPERM", outcome.describe()
            assert queued == b"", f"{queued!r} reached the operator's terminal"
        else:
            assert outcome.ok, outcome.describe()
            assert queued == b"Z", f"the host control injected {queued!r}"


_RLIMIT_KEYS = {
    "cpu": "RLIMIT_CPU",
    "address_space": "RLIMIT_AS",
    "file_size": "RLIMIT_FSIZE",
    "open_files": "RLIMIT_NOFILE",
    "processes": "RLIMIT_NPROC",
    "core": "RLIMIT_CORE",
}


def test_sandbox_check_reports_what_a_job_reads_from_proc(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Check: the posture `sandbox check --json` reports (read back by the sandbox itself)
    agrees with what an independent probe reads in a job under the same policy: seccomp,
    no_new_privs, capabilities, every namespace, and each rlimit value. A posture that claims
    more than the kernel enforces fails here. Reference: issue 3 "Posture, read back";
    the reference's unverifiable posture (ref-gateway-and-isolation §7)."""
    proc = subprocess.run(
        [*CLI, "sandbox", "check", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["posture"]
    states = {c["name"]: c["state"] for c in report["controls"]}
    box = _status(run_sandboxed([*probes.pyprobe, "status"], ro=[probes.directory, *python_view]))
    status, ns, rlimits = box["status"], box["ns"], box["rlimits"]
    assert isinstance(status, dict)
    assert isinstance(ns, dict)
    assert isinstance(rlimits, dict)
    host = _status(run_host([*probes.pyprobe, "status"]))["ns"]
    assert isinstance(host, dict)

    assert (states["seccomp"] == "on") == (status["Seccomp"] == "2"), (states, status)
    assert (states["no_new_privs"] == "on") == (status["NoNewPrivs"] == "1"), (states, status)
    assert (states["capabilities"] == "on") == (int(str(status["CapEff"]), 16) == 0)
    for name in ("user", "mnt", "pid", "ipc", "uts", "cgroup", "net"):
        assert (states[f"{name}_namespace"] == "on") == (ns[name] != host[name]), name
    for key, value in report["read_back"]["rlimits"].items():
        assert rlimits[_RLIMIT_KEYS[key]] == value, (key, value, rlimits)


def test_caller_secret_leak_to_callable_job_is_blocked_by_fresh_interpreter(
    probes: Probes, fake_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: code running in a job sandbox (a parser of hostile files gone wrong) looks for the
    gateway's secrets: its environment, the environ of pid 1 (the supervisor, a fork of the
    caller, so its environ block is the caller's) and the operator's files. Control: a fresh
    interpreter with an allowlisted environment, the supervisor not dumpable (EACCES), and a
    view without the home. The host control runs the same function in the caller itself.
    Reference: issue 3 "job sandboxes never hold the forge token"; §4.1 cases 1, 28."""
    marker = "ar-forge-token-" + secrets.token_hex(8)
    monkeypatch.setenv("AR_FORGEJO_TOKEN", marker)
    key = fake_home / ".ssh" / "id_ed25519"
    key.write_text(marker)
    payload = json.dumps(
        {
            "marker": marker,
            "paths": ["/proc/1/environ", "/proc/self/environ", "/proc/self/cmdline", str(key)],
        }
    ).encode()
    spec = importlib.util.spec_from_file_location(
        "callable_probe", probes.directory / "callable_probe.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    host = json.loads(module.inspect(payload))
    assert host["leaked"] == ["AR_FORGEJO_TOKEN"], host
    assert host["reads"][str(key)]["contains"], host

    box = json.loads(
        run_callable(
            "callable_probe:inspect",
            payload,
            run_policy(),
            timeout=60,
            pythonpath=(str(probes.directory),),
        )
    )
    assert box["leaked"] == [], box
    assert "AR_FORGEJO_TOKEN" not in box["env"], box
    for path, read in box["reads"].items():
        assert not read.get("contains"), (path, box)
    assert box["reads"]["/proc/1/environ"] == {"ok": False, "errno": "EACCES"}, box
    assert box["reads"][str(key)] == {"ok": False, "errno": "ENOENT"}, box

"""Red team: reading and writing the host's files from inside (prior-art §4.1 cases 1-3, 23, 29).

Targets are planted by the test under the real home (never only under /tmp, which the sandbox
replaces anyway), so each unsandboxed control succeeds for the user running the suite.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from tests.redteam._harness import Outcome, Probes, run_host, run_sandboxed

import auto_review

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox]

_HIDDEN = frozenset({"ENOENT", "EACCES"})
"""Not in the sandbox's view (ENOENT) or refused by Landlock (EACCES)."""


def _read(
    probes: Probes, path: Path | str, *, ro: list[Path], python_view: tuple[Path, ...]
) -> tuple[Outcome, Outcome]:
    argv = [*probes.pyprobe, "read", str(path)]
    return run_host(argv), run_sandboxed(argv, ro=[probes.directory, *python_view, *ro])


def _assert_denied(box: Outcome, expected: frozenset[str]) -> None:
    assert box.result is not None, f"the probe never ran inside the sandbox: {box.describe()}"
    assert not box.ok, f"the attack worked inside the sandbox: {box.describe()}"
    assert box.errno in expected, f"expected one of {sorted(expected)}: {box.describe()}"


def test_ssh_key_read_in_home_is_blocked_by_filesystem_view(
    probes: Probes, python_view: tuple[Path, ...], fake_home: Path
) -> None:
    """Attack: read ~/.ssh/id_* of the operator. Control: the sandbox's root is built from
    listed read-only binds only (ENOENT), with Landlock behind it (EACCES).
    Reference: §4.1 case 1; bubblewrap "cannot read /etc/shadow"; jailcheck."""
    key = fake_home / ".ssh" / "id_ed25519"
    host, box = _read(probes, key, ro=[], python_view=python_view)
    assert host.ok, host.describe()
    _assert_denied(box, _HIDDEN)


def test_etc_shadow_read_is_blocked_by_filesystem_view(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: read /etc/shadow. Control: /etc is reduced to what the policy binds, and the
    sandbox user has no capabilities and no host-root identity. Reference: §4.1 case 1;
    bubblewrap tests/test-run.sh."""
    if os.geteuid() != 0:
        pytest.skip(
            f"as uid {os.geteuid()} /etc/shadow (0640 root:shadow) is unreadable on the "
            "host too, so the control cannot succeed; the root run covers it"
        )
    host, box = _read(probes, "/etc/shadow", ro=[], python_view=python_view)
    assert host.ok, host.describe()
    _assert_denied(box, _HIDDEN)


def test_host_process_environ_read_is_blocked_by_pid_namespace(
    probes: Probes, python_view: tuple[Path, ...], host_sleeper: subprocess.Popen[bytes]
) -> None:
    """Attack: read /proc/<pid>/environ of a host process (secrets in env). Control: a fresh
    /proc in a new pid namespace has no host pids -> ENOENT. Reference: §4.1 case 1;
    Docker masks; sandlock test_procfs."""
    path = f"/proc/{host_sleeper.pid}/environ"
    host, box = _read(probes, path, ro=[], python_view=python_view)
    assert host.ok, host.describe()
    _assert_denied(box, frozenset({"ENOENT"}))


def test_pid1_environ_secret_read_is_blocked_by_env_allowlist(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: read /proc/1/environ (inside: the sandbox's own pid 1, its supervisor) hoping
    for the launcher's secrets. Control: the environment allowlist applied before pid 1 runs,
    and the pid namespace (host init is not pid 1 inside). The host control reads its own
    environ to prove the probe spots the planted value. Reference: §4.1 cases 1 and 28."""
    marker = "ar-redteam-pid1-" + secrets.token_hex(6)
    env = {**os.environ, "AR_REDTEAM_PID1_SECRET": marker}
    host = run_host([*probes.pyprobe, "read", "/proc/self/environ", marker], env=env)
    assert host.result is not None, host.describe()
    assert host.result["contains"], host.describe()
    for path in ("/proc/1/environ", "/proc/self/environ"):
        box = run_sandboxed(
            [*probes.pyprobe, "read", path, marker], ro=[probes.directory, *python_view], env=env
        )
        assert box.result is not None, box.describe()
        assert not box.result.get("contains"), box.describe()


@pytest.mark.parametrize("kind", ["absolute", "relative", "proc_self_root"])
def test_workspace_symlink_to_host_home_is_blocked_by_filesystem_view(
    probes: Probes, python_view: tuple[Path, ...], fake_home: Path, scratch: Path, kind: str
) -> None:
    """Attack: the repository ships a symlink (absolute, ../.. chain, /proc/self/root/...)
    pointing at a host secret, which a reader in the workspace follows. Control: the target is
    outside the sandbox's view -> ENOENT (Landlock would say EACCES). Reference: §4.1 case 2;
    Codex symlink masking; srt symlink tests."""
    key = fake_home / ".ssh" / "id_ed25519"
    workspace = scratch / "ws"
    workspace.mkdir()
    (workspace / "README").write_text("positive control\n")
    link = workspace / "leak"
    if kind == "absolute":
        link.symlink_to(key)
    elif kind == "relative":
        link.symlink_to(Path(*[".."] * len(workspace.parts)) / key.relative_to("/"))
    else:
        link.symlink_to(Path("/proc/self/root") / key.relative_to("/"))
    host, box = _read(probes, link, ro=[workspace], python_view=python_view)
    assert host.ok, host.describe()
    _assert_denied(box, _HIDDEN)
    control = run_sandboxed(
        [*probes.pyprobe, "read", str(workspace / "README")],
        ro=[probes.directory, *python_view, workspace],
    )
    assert control.ok, f"positive control: the workspace must be readable: {control.describe()}"


def test_write_outside_writable_dirs_is_blocked_by_filesystem_view(
    probes: Probes, python_view: tuple[Path, ...], fake_home: Path, scratch: Path
) -> None:
    """Attack: drop a file into the operator's home (e.g. a shell rc). Control: the home is not
    in the view (ENOENT), or read-only (EROFS), or Landlock-denied (EACCES); the --rw dir stays
    writable (positive control). Reference: §4.1 case 3; srt mandatory-deny."""
    target = fake_home / ".bashrc"
    argv = [*probes.pyprobe, "write", str(target)]
    host = run_host(argv)
    assert host.ok, host.describe()
    target.unlink()
    box = run_sandboxed(argv, ro=[probes.directory, *python_view], rw=[scratch])
    _assert_denied(box, frozenset({"ENOENT", "EROFS", "EACCES"}))
    assert not target.exists()
    control = run_sandboxed(
        [*probes.pyprobe, "write", str(scratch / "allowed")],
        ro=[probes.directory, *python_view],
        rw=[scratch],
    )
    assert control.ok, control.describe()
    assert (scratch / "allowed").exists()


def test_write_into_read_only_workspace_is_blocked_by_read_only_bind(
    probes: Probes, python_view: tuple[Path, ...], scratch: Path
) -> None:
    """Attack: plant .git/hooks/post-checkout in a workspace bound read-only. Control: the
    read-only bind -> EROFS (Landlock would say EACCES). Reference: §4.1 case 3."""
    hooks = scratch / "ws" / ".git" / "hooks"
    hooks.mkdir(parents=True)
    target = hooks / "post-checkout"
    argv = [*probes.pyprobe, "write", str(target)]
    host = run_host(argv)
    assert host.ok, host.describe()
    target.unlink()
    box = run_sandboxed(argv, ro=[probes.directory, *python_view, scratch / "ws"])
    _assert_denied(box, frozenset({"EROFS", "EACCES"}))
    assert not target.exists()


def test_write_into_installed_package_is_blocked_by_read_only_view(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: poison the executable's own files (the installed package, or sys._MEIPASS of
    the one-file build) so every later spawn runs attacker code. Control: the package is bound
    read-only -> EROFS, or not visible -> ENOENT, or Landlock -> EACCES. Reference: §4.1 case
    29; runc CVE-2019-5736 class."""
    package = Path(auto_review.__file__).resolve().parent
    target = package / "ar_redteam_poison.py"
    if not os.access(package, os.W_OK):
        pytest.skip(
            f"{package} is not writable by uid {os.geteuid()} on the host either, so "
            "the unsandboxed control cannot succeed; the root run covers it"
        )
    argv = [*probes.pyprobe, "write", str(target)]
    try:
        host = run_host(argv)
        assert host.ok, host.describe()
        target.unlink()
        box = run_sandboxed(argv, ro=[probes.directory, *python_view])
        _assert_denied(box, frozenset({"EROFS", "ENOENT", "EACCES"}))
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_sysfs_interface_listing_is_blocked_by_no_sys_mount(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: list /sys/class/net (host interfaces leak through sysfs even in a new net
    namespace, E2). Control: no /sys in the view -> ENOENT. Reference: §4.1 case 23; §1.11."""
    argv = [*probes.pyprobe, "listdir", "/sys/class/net"]
    host = run_host(argv)
    assert host.result is not None, host.describe()
    assert host.ok, host.describe()
    assert host.result["names"], host.describe()
    box = run_sandboxed(argv, ro=[probes.directory, *python_view])
    _assert_denied(box, frozenset({"ENOENT"}))


def test_proc_net_interface_leak_is_blocked_by_network_namespace(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Attack: read /proc/net/dev to learn the host's interfaces. Control: the empty network
    namespace shows only lo. Reference: §4.1 case 23."""
    host_ifaces = sorted(os.listdir("/sys/class/net"))
    non_lo = [name for name in host_ifaces if name != "lo"]
    if not non_lo:
        pytest.skip("this host has no interface besides lo; nothing could leak")
    argv = [*probes.pyprobe, "read", "/proc/net/dev", non_lo[0]]
    host = run_host(argv)
    assert host.result is not None, host.describe()
    assert host.result["contains"], host.describe()
    box = run_sandboxed(argv, ro=[probes.directory, *python_view])
    assert box.result is not None, box.describe()
    assert not box.result.get("contains"), box.describe()


@pytest.mark.parametrize(
    "path", ["/proc/kcore", "/proc/keys", "/proc/sched_debug", "/proc/timer_list"]
)
def test_sensitive_proc_entry_read_is_blocked_by_proc_masks(
    probes: Probes, python_view: tuple[Path, ...], path: str
) -> None:
    """Attack: read kernel-global /proc entries Docker masks (kcore, keys, sched_debug,
    timer_list). Control: masked in the fresh /proc (empty, ENOENT or EACCES). Reference: §4.1
    case 23; Docker maskedPaths."""
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this kernel")
    host, box = _read(probes, path, ro=[], python_view=python_view)
    if not host.ok:
        pytest.skip(
            f"{path} is unreadable for uid {os.geteuid()} on the host ({host.errno}); "
            "the unsandboxed control cannot succeed"
        )
    assert box.result is not None, box.describe()
    assert not box.ok or box.result.get("size") == 0, box.describe()


def test_symlink_swapped_workspace_bind_is_blocked_by_nofollow_binds(
    probes: Probes, python_view: tuple[Path, ...], fake_home: Path, scratch: Path
) -> None:
    """Attack, in two sandboxed stages as the review pipeline runs them: a compromised clone
    job (the job dir is writable to it) leaves `repo` as a symlink to a host directory outside
    every view (here the operator's state dir, world-readable like many config dirs; dangling
    inside the first sandbox); the next job gets `--ro <job>/repo` (the analyze policy's
    workspace) and reads through it, and the model prompt would carry what it read. Control
    expected: caller-given paths are bound without following symlinks the sandbox did not plan
    for (refused up front with exit 125, or the link leads nowhere inside: ENOENT). The host
    control reads the file through the same link.
    Reference: §4.1 cases 2 and 30; runc CVE-2021-30465 (symlinks at mount time);
    docs/dev/REDTEAM-FINDINGS.md F5."""
    state = fake_home / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    secret = state / "secrets.env"
    secret.write_text("AR_FORGEJO_TOKEN=ar-redteam-not-a-token\n")
    secret.chmod(0o644)
    job = scratch / "job"
    job.mkdir()
    repo = job / "repo"
    ro = [probes.directory, *python_view]
    stage1 = run_sandboxed([*probes.pyprobe, "symlink", str(state), str(repo)], ro=ro, rw=[job])
    assert stage1.ok, f"stage 1 could not plant the link: {stage1.describe()}"
    assert repo.is_symlink()
    target = repo / "secrets.env"
    host = run_host([*probes.pyprobe, "read", str(target)])
    assert host.ok, host.describe()
    stage2 = run_sandboxed([*probes.pyprobe, "read", str(target)], policy="analyze", ro=[repo, *ro])
    if stage2.returncode == 125:
        return  # refused before anything ran: the symlinked workspace was not bound
    _assert_denied(stage2, frozenset({"ENOENT"}))


@pytest.mark.parametrize("how", ["exec", "ldso"])
@pytest.mark.parametrize("where", ["tmp", "rw_bind"])
def test_dropped_payload_execution_is_blocked_by_noexec_mounts(
    probes: Probes, python_view: tuple[Path, ...], scratch: Path, where: str, how: str
) -> None:
    """Attack: write a payload where the job may write (/tmp, a --rw dir), then run it:
    directly, or through the dynamic loader, which maps it with mmap(PROT_EXEC) and needs no
    execve. Control: writable mounts are noexec (execve: EACCES; the loader's mmap: EPERM,
    "failed to map segment"), and Landlock grants no EXECUTE under write paths. The host
    control runs the same payload from the same kind of directory. Reference: mounts.py
    ("closes: drop a payload, then run it"); minijail -t noexec /tmp."""
    argv = [*probes.pyprobe, "dropexec", str(probes.binaries["euid"])]
    host = run_host([*argv, str(scratch), how])
    assert host.ok, host.describe()
    target = "/tmp" if where == "tmp" else str(scratch)
    box = run_sandboxed([*argv, target, how], ro=[probes.directory, *python_view], rw=[scratch])
    assert box.result is not None, box.describe()
    assert not box.ok, f"the dropped payload ran: {box.describe()}"
    if how == "exec":
        assert box.errno == "EACCES", box.describe()
    else:
        assert "failed to map segment" in str(box.result["output"]), box.describe()


@pytest.mark.xfail(
    strict=True,
    reason="F51: a memfd is no mount of the job's, so noexec does not cover it (defence in depth)",
)
def test_dropped_payload_in_a_memfd_is_blocked_by_noexec(
    probes: Probes, python_view: tuple[Path, ...], scratch: Path
) -> None:
    """Attack: write a payload into a memfd (memfd_create) and fexecve it, where the writable
    mounts' noexec does not reach. Control (none yet, F51): the full tier reports
    ``noexec_writable: on`` for its mounts, which a memfd is not. The host control runs the same
    payload the same way. Reference: memfd_create(2); vm.memfd_noexec."""
    argv = [*probes.pyprobe, "dropexec", str(probes.binaries["euid"]), str(scratch), "memfd"]
    host = run_host(argv)
    assert host.ok, host.describe()
    box = run_sandboxed(argv, ro=[probes.directory, *python_view], rw=[scratch])
    assert box.result is not None, box.describe()
    assert not box.ok, f"the payload ran from a memfd: {box.describe()}"


_ONE_FILE_BUILD = Path(auto_review.__file__).resolve().parents[2] / "dist" / "auto-review"


def _unpacked_dir(launcher: subprocess.Popen[bytes], bound_s: float = 60.0) -> Path | None:
    """The _MEI dir the running one-file build unpacked into (from its processes' maps)."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline and launcher.poll() is None:
        for pid in [launcher.pid, *_children_of(launcher.pid)]:
            try:
                maps = Path(f"/proc/{pid}/maps").read_text()
            except OSError:
                continue
            for line in maps.splitlines():
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "/_MEI" in path:
                    return Path(path[: path.index("/", path.index("/_MEI") + 1)])
        time.sleep(0.1)
    return None


def _children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_write_into_unpacked_one_file_build_is_blocked_by_filesystem_view(
    probes: Probes, scratch: Path
) -> None:
    """Attack: the one-file build unpacks its Python runtime and our code into a _MEI dir
    under the temp dir and re-executes itself from there; a job that writes into that dir
    poisons every later start. Control: the dir is not in a job's view (ENOENT), or bound
    read-only where the interpreter needs it (EROFS); Landlock would say EACCES. The host
    control writes into the same live dir. Reference: §4.1 case 29; prior-art §5.1."""
    if not os.access(_ONE_FILE_BUILD, os.X_OK):
        pytest.skip(f"no one-file build at {_ONE_FILE_BUILD} (packaging/build makes it)")
    control = scratch / "ctl"
    control.mkdir()
    target = control / "target"
    argv = [
        str(_ONE_FILE_BUILD),
        "sandbox",
        "run",
        "--ro",
        str(probes.directory),
        "--ro",
        str(control),
        "--",
        *probes.c("meiwrite"),
        str(target),
        "30",
    ]
    launcher = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        unpacked = _unpacked_dir(launcher)
        assert unpacked is not None, "could not find the build's unpacked dir"
        marker = unpacked / "ar-redteam-host-control"
        marker.write_text("host control\n")  # the dir is writable on the host
        marker.unlink()
        target.write_text(f"{unpacked}\n")
        out, err = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, 9)
            launcher.wait()
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert lines, f"the probe did not report: rc={launcher.returncode} {err.decode()[-500:]}"
    result = lines[-1]
    assert result["ok"] is False, result
    assert result["errno"] in {"ENOENT", "EROFS", "EACCES"}, result


_SET_ID_CALLS = ("chmod", "fchmod", "fchmodat", "fchmodat2")


@pytest.mark.parametrize("tier", ["full", "restricted"])
def test_setuid_executable_planted_in_writable_dir_is_blocked_by_seccomp_mode_check(
    probes: Probes, tier: str
) -> None:
    """Attack: a job copies an executable into its writable dir and sets the set-user-ID (or
    set-group-ID) bit, for a host user to run it later as the file's owner. Started by root,
    the full tier's writable binds are id-mapped, so the file is host root's on disk: a
    set-user-ID root program left for any local user who can reach the dir (the operator's
    otherwise). Control: seccomp refuses chmod/fchmod/fchmodat/fchmodat2 with either bit
    (EPERM), and no file there ends up with one; a plain 0755 still works (positive control).
    The host control sets each bit with each call in the same dir."""
    root = os.geteuid() == 0
    writable = Path(
        tempfile.mkdtemp(prefix=".ar-redteam-setid-", dir="/var/tmp" if root else Path.home())
    )
    if root and tier == "restricted":  # the job is host nobody, with no mapping (F11)
        os.chown(writable, 65534, 65534)
    try:
        for call in _SET_ID_CALLS:
            for mode in ("4755", "2755"):
                host = run_host([*probes.c("setid"), str(writable), call, mode])
                assert host.ok, host.describe()
        for path in writable.iterdir():
            path.unlink()
        for call in _SET_ID_CALLS:
            for mode in ("4755", "2755"):
                box = run_sandboxed(
                    [*probes.c("setid"), str(writable), call, mode],
                    ro=[probes.directory],
                    rw=[writable],
                    isolation=tier,
                )
                assert box.result is not None, box.describe()
                assert not box.ok, box.describe()
                assert box.errno == "EPERM", box.describe()
        planted = {p.name: p.stat().st_mode & 0o7777 for p in writable.iterdir()}
        assert planted, "the sandboxed probes made no file"
        assert not any(mode & 0o6000 for mode in planted.values()), planted
        control = run_sandboxed(
            [*probes.c("setid"), str(writable), "fchmodat", "700"],
            ro=[probes.directory],
            rw=[writable],
            isolation=tier,
        )
        assert control.ok, control.describe()
    finally:
        shutil.rmtree(writable, ignore_errors=True)

"""Job sandboxes on the real kernel: each control beside the positive control that shows it."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import ask_proxy, in_child, require

from auto_review.sandbox import (
    EgressRefusal,
    Limits,
    SandboxLimitExceeded,
    SandboxPolicyInvalid,
    SandboxPolicyViolation,
    SandboxSetupError,
    SandboxSyscallError,
    SandboxTimeout,
    Tier,
    _child,
    _proxy,
    clone_policy,
    kernel,
    run_command,
    run_policy,
    spawn,
)

pytestmark = pytest.mark.sandbox


def sh(script: str, **kwargs: object) -> tuple[int, str, str]:
    policy = kwargs.pop("policy", None) or run_policy()
    done = run_command(["sh", "-c", script], policy, timeout=60, **kwargs)  # type: ignore[arg-type]
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.fixture(autouse=True)
def _full() -> None:
    require(Tier.FULL)


def test_job_exit_status_stdin_and_output_round_trip() -> None:
    done = run_command(
        ["sh", "-c", "cat; echo err >&2; exit 3"], run_policy(), stdin=b"in\n", timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, b"in\n", b"err\n")


def test_job_sees_only_the_allowlisted_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AR_FORGEJO_TOKEN", "host-secret-token")
    done = run_command(["env"], run_policy(), env={"JOB_VAR": "given"}, timeout=60)
    names = {line.split("=", 1)[0] for line in done.stdout.decode().splitlines()}
    assert "JOB_VAR" in names
    assert "AR_FORGEJO_TOKEN" not in names
    assert b"host-secret-token" not in done.stdout
    assert names <= {"JOB_VAR", "PATH", "HOME", "TMPDIR", "LANG", "PWD", "_", "SHLVL"}


def test_job_reads_back_the_same_status_its_posture_reports() -> None:
    done = run_command(["cat", "/proc/self/status"], run_policy(), timeout=60)
    fields = dict(line.split(":", 1) for line in done.stdout.decode().splitlines() if ":" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    assert int(fields["CapEff"], 16) == 0
    assert int(fields["CapBnd"], 16) == 0
    assert done.posture.state("seccomp") == "on"
    assert done.posture.state("no_new_privs") == "on"
    for name in ("user", "mnt", "pid", "ipc", "uts", "net"):
        assert done.posture.state(f"{name}_namespace") == "on", name


def test_job_runs_as_an_ordinary_uid_with_its_own_hostname() -> None:
    code, out, _ = sh("id -u; id -g; hostname")
    assert code == 0
    assert out.split() == ["1000", "1000", "auto-review-sandbox"]


def test_a_caller_umask_of_0077_leaves_the_view_reachable_and_is_the_jobs_umask() -> None:
    """The shipped systemd unit's UMask=0077 must not make the new root's mount points 0700:
    started by root, the sandbox's job (uid 1000 there) could reach none of its paths. The job
    still gets the caller's umask for the files it makes."""
    previous = os.umask(0o077)
    try:
        code, out, err = sh("umask; ls -d /dev/null /etc/passwd /proc/self /tmp /usr/bin/env")
    finally:
        os.umask(previous)
    assert code == 0, err
    assert out.split() == ["0077", "/dev/null", "/etc/passwd", "/proc/self", "/tmp", "/usr/bin/env"]


def test_host_secrets_outside_the_view_do_not_exist_while_listed_files_do() -> None:
    code, out, _ = sh(
        "test -e /etc/passwd && echo passwd; test -e /etc/shadow || echo noshadow;"
        " test -e /root || echo noroot; test -e /sys || echo nosys;"
        " test -e /usr/bin/env && echo usr"
    )
    assert code == 0
    assert out.split() == ["passwd", "noshadow", "noroot", "nosys", "usr"]


def test_proc_shows_only_the_sandbox_pids_and_masks_sensitive_entries() -> None:
    host_pid = os.getpid()
    _code, out, err = sh(
        f"test -e /proc/{host_pid} || echo nohost; test -r /proc/self/status && "
        "echo self; stat -c masked=%t,%T /proc/keys; echo 1 > /proc/sys/kernel/hostname"
    )
    lines = out.split()
    assert "self" in lines
    assert "masked=1,3" in lines
    assert "Read-only file system" in err  # /proc/sys is read-only
    if host_pid != 1:
        assert "nohost" in lines


def test_writable_bind_accepts_writes_while_read_only_paths_refuse(tmp_path: Path) -> None:
    done = run_command(
        ["sh", "-c", f"echo hi > {tmp_path}/out; echo x > /usr/escape"],
        run_policy(rw=[str(tmp_path)]),
        timeout=60,
    )
    assert (tmp_path / "out").read_text() == "hi\n"
    assert b"Read-only file system" in done.stderr
    assert not Path("/usr/escape").exists()


def test_read_only_extra_path_is_readable_but_not_writable(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("data")
    tmp_path.chmod(0o755)  # started by root, the job is host nobody: ro data must be readable
    _code, out, err = sh(
        f"cat {tmp_path}/data.txt; echo x > {tmp_path}/new", policy=run_policy(ro=[str(tmp_path)])
    )
    assert out == "data"
    assert "Read-only file system" in err
    assert not (tmp_path / "new").exists()


def test_private_tmp_is_writable_invisible_to_the_host_and_noexec() -> None:
    marker = f"auto-review-test-{os.getpid()}"
    _code, out, _err = sh(
        f"echo x > /tmp/{marker} && echo wrote; cp /usr/bin/true /tmp/t; /tmp/t; echo rc=$?"
    )
    assert "wrote" in out
    assert not Path(f"/tmp/{marker}").exists()
    assert "rc=126" in out  # Permission denied: /tmp is noexec (and Landlock has no EXECUTE)


def test_no_network_policy_cannot_open_inet_sockets_but_network_policy_connects() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
    try:
        closed = run_command(["bash", "-c", probe], run_policy(), timeout=60)
        opened = run_command(["bash", "-c", probe], run_policy(network=True), timeout=60)
    finally:
        server.close()
    assert b"Operation not permitted" in closed.stderr
    assert b"connected" not in closed.stdout
    assert b"connected" in opened.stdout
    assert closed.posture.state("net_namespace") == "on"
    assert opened.posture.state("net_namespace") == "off"


def test_clone_job_reaches_its_forge_only_through_the_egress_proxy(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    job = tmp_path / "job"
    job.mkdir()
    # The caller's environment may not route git around the proxy.
    env = {"no_proxy": "*", "NO_PROXY": "*", "http_proxy": f"http://127.0.0.1:{port}"}
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo direct; "
        'printf "CONNECT 127.0.0.1:%s HTTP/1.1\r\n\r\n" "$FORGE_PORT" > /dev/tcp/127.0.0.1/3128'
        " && echo proxied-sent; env | grep -i proxy | sort"
    )
    try:
        done = run_command(
            ["bash", "-c", script],
            clone_policy(str(job), egress=[("127.0.0.1", port)]),
            env={**env, "FORGE_PORT": str(port)},
            timeout=60,
        )
        server.settimeout(10)
        conn, _ = server.accept()  # the proxy dialled the forge from the host's namespace
        conn.close()
    finally:
        server.close()
    out = done.stdout.decode()
    assert "direct" not in out  # Landlock allows only the proxy's port in the job's namespace
    assert "proxied-sent" in out
    assert "no_proxy" not in out.lower()
    assert "http_proxy=http://127.0.0.1:3128" in out
    report = done.posture
    assert report.state("net_namespace") == "on"
    assert report.state("egress") == "on"
    egress = next(c for c in report.controls if c.name == "egress")
    assert f"proxied to 127.0.0.1:{port} only" in egress.reason
    tcp = next(c for c in report.controls if c.name == "landlock_tcp")
    assert "connect ports [3128]" in tcp.reason


def test_clone_job_result_names_the_destination_its_proxy_refused(tmp_path: Path) -> None:
    forge = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    forge.bind(("127.0.0.1", 0))
    forge.listen(4)  # the kernel completes the proxy's dial; nothing need answer
    port = forge.getsockname()[1]
    try:
        done = run_command(
            ["bash", "-c", ask_proxy("evil.example:443", f"127.0.0.1:{port}") + "; exit 3"],
            clone_policy(str(tmp_path), egress=[("127.0.0.1", port)]),
            timeout=60,
        )
    finally:
        forge.close()
    assert done.returncode == 3
    assert done.stdout.decode().splitlines() == [
        "HTTP/1.1 403 Forbidden",
        "HTTP/1.1 200 Connection established",
    ]
    assert done.egress is not None
    assert done.egress.tunnels == 1  # the positive control: the forge itself was reached
    assert done.egress.refusals == (
        EgressRefusal(403, "destination not allowed by the sandbox policy", "evil.example:443"),
    )


def test_a_job_without_the_egress_proxy_reports_no_egress() -> None:
    assert run_command(["true"], run_policy(), timeout=60).egress is None


def test_a_clone_job_that_fails_in_the_sandbox_carries_its_refusals_on_the_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(SandboxTimeout) as caught:
        run_command(
            ["bash", "-c", ask_proxy("evil.example:443") + "; sleep 30"],
            clone_policy(str(tmp_path), egress=[("127.0.0.1", 9)]),
            timeout=2,
        )
    assert caught.value.egress is not None
    [refusal] = caught.value.egress.refusals
    assert (refusal.status, refusal.destination) == (403, "evil.example:443")


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with (
            contextlib.suppress(OSError),
            open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh,
        ):
            if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def test_an_egress_listener_that_never_arrives_ends_in_a_setup_error_with_no_process_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outer child is forked from this process, so it runs the patched step: it hangs where
    # it should hand over its listener. The wait is read at call time.
    monkeypatch.setattr(_child, "open_listener", lambda _fd: time.sleep(60))
    monkeypatch.setattr(_proxy, "LISTENER_WAIT_SECONDS", 0.5)
    before = _children_of(os.getpid())
    fds_before = set(os.listdir("/proc/self/fd"))
    started = time.monotonic()
    with pytest.raises(SandboxSetupError) as caught:
        run_command(["true"], clone_policy(str(tmp_path), egress=[("127.0.0.1", 9)]), timeout=60)
    assert caught.value.step == "egress-listener"
    assert time.monotonic() - started < 30
    assert _children_of(os.getpid()) == before  # the outer child was killed and reaped
    assert set(os.listdir("/proc/self/fd")) == fds_before  # its report pipe was closed


def test_only_stdio_descriptors_reach_the_job() -> None:
    leaked = os.open("/dev/null", os.O_RDONLY)  # inheritable on purpose
    os.set_inheritable(leaked, True)
    try:
        done = run_command(["ls", "/proc/self/fd"], run_policy(), timeout=60)
    finally:
        os.close(leaked)
    assert done.stdout.split() == [b"0", b"1", b"2", b"3"]  # 3 is ls's own directory fd


def _alive_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    value = f"{os.getpid()}{id(object()) % 100000}"  # digits only: sleep parses it
    yield value
    for pid in _alive_with(value):  # never leave a stray process behind on failure
        os.kill(pid, 9)


@pytest.mark.parametrize("tier", [Tier.FULL, Tier.RESTRICTED])
def test_deadline_kills_the_whole_tree_including_detached_daemons(tier: Tier, marker: str) -> None:
    require(tier)
    script = f"setsid sleep 1000.{marker} & (sleep 1001.{marker} &) ; sleep 1002.{marker}"
    with pytest.raises(SandboxTimeout):
        run_command(["sh", "-c", script], run_policy(), timeout=1, isolation=tier)
    assert _alive_with(marker) == []


@pytest.mark.parametrize("tier", [Tier.FULL, Tier.RESTRICTED])
def test_daemons_die_when_the_job_exits(tier: Tier, marker: str) -> None:
    require(tier)
    done = run_command(
        ["sh", "-c", f"setsid sleep 1000.{marker} & echo started"],
        run_policy(),
        timeout=60,
        isolation=tier,
    )
    assert done.stdout == b"started\n"
    assert _alive_with(marker) == []


def test_output_beyond_the_cap_stops_the_job() -> None:
    with pytest.raises(SandboxLimitExceeded) as caught:
        run_command(["yes"], run_policy(), timeout=60, max_output_bytes=64 * 1024)
    assert caught.value.limit == "output"
    small = run_command(["echo", "ok"], run_policy(), timeout=60, max_output_bytes=64 * 1024)
    assert small.stdout == b"ok\n"


def test_death_by_sigsys_is_reported_as_a_policy_violation() -> None:
    with pytest.raises(SandboxPolicyViolation):
        sh("kill -SYS $$")
    assert sh("kill -TERM $$")[0] == -15  # other signals are the job's own result


def test_file_size_limit_stops_a_disk_fill() -> None:
    policy = run_policy(limits=Limits(file_size_bytes=1024 * 1024))
    with pytest.raises(SandboxLimitExceeded) as caught:
        sh("exec head -c 4000000 /dev/zero > /tmp/big", policy=policy)
    assert caught.value.limit == "file_size"
    assert sh("head -c 1000 /dev/zero > /tmp/small && echo ok", policy=policy)[1] == "ok\n"


def test_process_limit_stops_a_fork_bomb() -> None:
    # RLIMIT_NPROC binds ordinary users; host root is exempt (kernel/fork.c), so there the
    # pid namespace's own pid_max (>= 301) is what stops the bomb. The shell prints how many
    # children it managed to start; a failed fork ends it.
    script = "i=0; while [ $i -lt 400 ]; do sleep 100 & i=$((i+1)); echo $i; done"
    capped = run_command(["sh", "-c", script], run_policy(limits=Limits(processes=8)), timeout=120)
    roomy = run_command(
        ["sh", "-c", script], run_policy(limits=Limits(processes=1024)), timeout=120
    )
    started = int((capped.stdout.split() or [b"0"])[-1])
    assert started <= (8 if os.geteuid() != 0 else 301)
    assert roomy.stdout.split()[-1] == b"400"


def test_missing_command_is_a_setup_error_with_the_shell_exit_code() -> None:
    with pytest.raises(SandboxSetupError) as caught:
        run_command(["no-such-command-anywhere"], run_policy(), timeout=60)
    assert caught.value.exit_code == 127
    assert caught.value.step == "execve"


_ROOT_JOB_ID = 65534  # a restricted-tier job started by root is host nobody (identity.py)


@pytest.fixture
def job_dir(tmp_path: Path) -> Iterator[Path]:
    """A dir the restricted-tier job may write: as root, one host nobody owns, outside root's
    private pytest tree (no mount view: the job meets the host's directory modes)."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="ar-test-job-", dir="/var/tmp"))
    os.chown(path, _ROOT_JOB_ID, _ROOT_JOB_ID)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_restricted_tier_confines_without_namespaces(job_dir: Path) -> None:
    require(Tier.RESTRICTED)
    done = run_command(
        [
            "sh",
            "-c",
            f"cat /etc/shadow; echo x > /usr/escape; echo ok > {job_dir}/w; "
            "echo t > $TMPDIR/t && echo tmp",
        ],
        run_policy(rw=[str(job_dir)]),
        timeout=60,
        isolation=Tier.RESTRICTED,
    )
    assert b"Permission denied" in done.stderr
    assert (job_dir / "w").read_text() == "ok\n"
    assert done.stdout == b"tmp\n"
    assert not Path("/usr/escape").exists()
    assert done.posture.state("landlock_fs") == "on"
    assert done.posture.state("user_namespace") == "off"


def test_restricted_tier_started_by_root_runs_the_job_as_host_nobody(job_dir: Path) -> None:
    require(Tier.RESTRICTED)
    if os.geteuid() != 0:
        pytest.skip("only root is switched to host nobody (an ordinary user stays itself)")
    done = run_command(
        ["sh", "-c", "id -u; id -g; id -G"],
        run_policy(rw=[str(job_dir)]),
        timeout=60,
        isolation=Tier.RESTRICTED,
    )
    assert done.stdout.split() == [b"65534"] * 3
    status = done.posture.read_back["status"]
    assert {status[k] for k in ("uid", "euid", "suid", "fsuid", "gid", "fsgid")} == {65534}
    rlimits = next(c for c in done.posture.controls if c.name == "rlimits")
    assert "host uid 65534" in rlimits.reason


def test_restricted_tier_started_by_root_refuses_a_path_host_nobody_cannot_write(
    job_dir: Path,
) -> None:
    require(Tier.RESTRICTED)
    if os.geteuid() != 0:
        pytest.skip("only root is switched to host nobody (an ordinary user stays itself)")
    closed = Path(tempfile.mkdtemp(prefix="ar-test-root-only-", dir="/var/tmp"))  # 0700 root
    try:
        with pytest.raises(SandboxPolicyInvalid) as caught:
            run_command(
                ["true"], run_policy(rw=[str(closed)]), timeout=60, isolation=Tier.RESTRICTED
            )
    finally:
        closed.rmdir()
    assert caught.value.exit_code == 125
    assert str(closed) in caught.value.message
    assert "uid 65534" in caught.value.message
    ok = run_command(["true"], run_policy(rw=[str(job_dir)]), timeout=60, isolation=Tier.RESTRICTED)
    assert ok.returncode == 0  # positive control: a dir the job user owns


_LOADER_RUN = 'cp /bin/true "$1/p" && /lib64/ld-linux-x86-64.so.2 "$1/p" && echo ran'


def _loader_run_in_restricted_tier(job_dir: Path, *, noexec: bool) -> tuple[str, str, str]:
    """In a private mount namespace (a child of the test, as root), optionally mount noexec
    tmpfs over ``job_dir`` and /tmp, then run a dropped file through ld.so in the restricted
    tier."""

    def child() -> tuple[str, str, str]:
        kernel.unshare(kernel.CLONE_NEWNS)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE, None)
        if noexec:  # the job dir and /tmp, where the sandbox makes the job's scratch dir
            flags = kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC
            for where in (str(job_dir), tempfile.gettempdir()):
                kernel.mount("tmpfs", where, "tmpfs", flags, "size=4m,mode=1777")
        done = run_command(
            ["sh", "-c", _LOADER_RUN, "sh", str(job_dir)],
            run_policy(rw=[str(job_dir)]),
            timeout=60,
            isolation=Tier.RESTRICTED,
        )
        control = next(c for c in done.posture.controls if c.name == "noexec_writable")
        return done.stdout.decode().strip(), control.state, control.reason

    stdout, state, reason = in_child(child)
    return stdout, state, reason


def test_restricted_tier_reports_ld_so_mapping_dropped_files_unless_the_mount_is_noexec(
    job_dir: Path,
) -> None:
    require(Tier.RESTRICTED)
    if os.geteuid() != 0:
        pytest.skip("mounting a noexec tmpfs on the host path needs root (a private mount ns)")
    # F6: no control exists in this tier, so the posture must say so exactly when it holds.
    stdout, state, reason = _loader_run_in_restricted_tier(job_dir, noexec=False)
    assert (stdout, state) == ("ran", "off")
    assert "ld.so" in reason
    assert str(job_dir) in reason
    # Positive control: on a noexec mount the kernel refuses the loader's mmap, and it is "on".
    stdout, state, reason = _loader_run_in_restricted_tier(job_dir, noexec=True)
    assert (stdout, state) == ("", "on"), reason


def test_none_tier_only_when_asked_and_reports_controls_off() -> None:
    done = run_command(["true"], run_policy(), timeout=60, isolation=Tier.NONE)
    assert done.returncode == 0
    assert done.posture.state("seccomp") == "off"
    assert done.posture.state("landlock_fs") == "off"
    assert done.posture.state("no_new_privs") == "on"


def test_a_symlink_swapped_in_after_planning_is_not_followed_by_the_bind(tmp_path: Path) -> None:
    from auto_review.sandbox import mounts

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("host secret")
    job = tmp_path / "job"
    (job / "repo").mkdir(parents=True)
    policy = run_policy(ro=[str(job / "repo")])  # checked: no symlink yet
    (job / "repo").rmdir()
    (job / "repo").symlink_to(secret)  # the race a concurrent job could win
    view = mounts.plan_view(policy.ro_paths, policy.rw_paths)
    assert (str(job / "repo"), False, True) in view.binds
    with pytest.raises(SandboxSetupError) as caught:
        run_command(["cat", f"{job}/repo/key"], policy, timeout=60)
    assert caught.value.step == "bind"


def test_restricted_tier_refuses_unix_socket_clients_but_keeps_socketpair() -> None:
    require(Tier.RESTRICTED)
    script = (
        "import socket\n"
        "a, b = socket.socketpair(); print('pair ok')\n"
        "try:\n    socket.socket(socket.AF_UNIX)\n"
        "except PermissionError:\n    print('unix EPERM')\n"
    )
    done = run_command(
        ["python3", "-c", script], run_policy(), timeout=60, isolation=Tier.RESTRICTED
    )
    assert done.stdout.split(b"\n")[:2] == [b"pair ok", b"unix EPERM"]
    assert done.posture.state("noexec_writable") == "off"


def _no_mount_setattr(*_args: object) -> None:
    raise SandboxSyscallError("open_tree", errno.ENOSYS)


@pytest.mark.parametrize("kernel_api", ["mount_setattr", "remount fallback (before 5.12)"])
def test_a_mount_below_a_read_only_path_is_read_only_inside_too(
    tmp_path: Path, kernel_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs below tmp_path needs CAP_SYS_ADMIN on the host (root)")
    if kernel_api != "mount_setattr":  # the forked children inherit the patched module
        monkeypatch.setattr(kernel, "bind_tree", _no_mount_setattr)
    sub = tmp_path / "data" / "sub"
    sub.mkdir(parents=True)
    kernel.mount("tmpfs", str(sub), "tmpfs", 0, "size=64k,mode=0755")
    try:
        (sub / "f.txt").write_text("below")
        _code, out, err = sh(
            f"cat {sub}/f.txt; echo x > {sub}/new",
            policy=run_policy(ro=[str(tmp_path / "data")]),
        )
        assert out == "below"  # positive control: the submount is there and readable
        assert "Read-only file system" in err
        assert not (sub / "new").exists()
    finally:
        kernel.umount2(str(sub), kernel.MNT_DETACH)


def test_single_threaded_caller_keeps_its_signal_mask_and_handlers_across_a_spawn() -> None:
    def caller() -> dict[str, object]:  # in a forked child: surely the only thread
        got: list[int] = []
        signal.signal(signal.SIGUSR2, lambda signum, _frame: got.append(signum))
        threads = len(os.listdir("/proc/self/task"))
        before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        out = sh("echo ok")[1]
        after = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        os.kill(os.getpid(), signal.SIGUSR2)  # positive control: the handler still runs here
        return {"threads": threads, "out": out, "same_mask": before == after, "got": got}

    seen = in_child(caller)
    assert seen == {"threads": 1, "out": "ok\n", "same_mask": True, "got": [signal.SIGUSR2]}


def test_multithreaded_caller_gets_the_same_job_result() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        assert len(os.listdir("/proc/self/task")) > 1  # the os.fork() path
        assert sh("echo ok; exit 3")[:2] == (3, "ok\n")
    finally:
        release.set()
        worker.join()


def test_a_failing_io_loop_closes_each_pipe_once_and_removes_the_scratch_dir(
    job_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The I/O loop closes the pipes it was handed, also when it raises; _run closed them a
    # second time. In the threaded job server a second close can hit another job's fd that
    # took the number meanwhile; here it raised EBADF and skipped the rest of the cleanup
    # (the scratch dir stayed on the host, the cgroup too).
    require(Tier.RESTRICTED)
    monkeypatch.setattr(tempfile, "tempdir", str(job_dir))  # where the scratch dir goes

    def boom(_read_back: object) -> None:
        raise RuntimeError("the posture hook failed")

    with pytest.raises(RuntimeError, match="posture hook"):
        spawn._run(
            ["true"],
            run_policy(),
            isolation=Tier.RESTRICTED,
            env=None,
            cwd=None,
            timeout=60,
            memory_bytes=None,
            stdin=None,
            stdio=None,
            max_output_bytes=None,
            pass_fds={},
            on_posture=boom,
        )
    assert not list(job_dir.glob("auto-review-scratch-*"))


@pytest.mark.parametrize("timeout", [3e6, float("inf"), float("nan")])
def test_a_timeout_the_io_loop_cannot_wait_for_is_refused_before_the_job_starts(
    timeout: float,
) -> None:
    # A job server request may carry any number: one past what poll(2) can wait (2**31 ms)
    # used to start the job and then fail in the I/O loop (with the double close above).
    with pytest.raises(SandboxPolicyInvalid, match="timeout"):
        run_command(["true"], run_policy(), timeout=timeout)


@pytest.mark.parametrize("timeout", [0, 0.0, -1, -1e-9, float("-inf")])
def test_a_timeout_of_zero_or_less_is_refused_before_the_job_starts(timeout: float) -> None:
    # It used to start the job, whose supervisor then killed it at once (SandboxTimeout), or
    # gave a backstop already passed (F59).
    with pytest.raises(SandboxPolicyInvalid, match="not a number of seconds from 0"):
        run_command(["true"], run_policy(), timeout=timeout)

"""What runs after fork: the outer child, the supervisor, and the job, in that order.

    caller --fork--> outer (A): setsid, die-with-parent, stdio and fd allowlist, cgroup,
                     |          new namespaces + id map, the new root staged: /tmp, binds,
                     |          links, /dev (full tier); forwards signals to B; exits once B
                     |          has reported
                     `--fork--> supervisor (B): pid 1 of the new pid namespace (full tier) or a
                                |   child subreaper (other tiers); fresh /proc, pivots into the
                                |   root; reaps; owns the deadline and disk cap; reports the
                                |   job's exit status
                                `--fork--> job (C): rlimits, no_new_privs, Landlock, caps
                                           dropped, seccomp last, posture read back, execve

Invariants: no exception crosses a fork (every entry point ends in ``os._exit``); any surprise
ends the process with a JSON reason on ``report_fd`` (the parent's pipe, close-on-exec); the
job never runs half-confined, because execve is the last step and is skipped on any error.
Only modules imported before the fork are used (no imports, no logging, no threads here); A
and B are single-threaded and install Python signal handlers only after forking, so they fork
with ``kernel.fork_single_threaded`` (no CPython after-fork hooks, docs/adr/0008).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import select
import signal
from dataclasses import dataclass, field
from typing import Any, NoReturn

from auto_review.sandbox import (
    diskcap,
    identity,
    kernel,
    landlock,
    limits,
    mounts,
    namespaces,
    posture,
    seccomp,
)
from auto_review.sandbox._io import STOP_SIGNAL
from auto_review.sandbox._messages import json_int, posture_line, send_line
from auto_review.sandbox._reap import kill_descendants
from auto_review.sandbox.egress import open_listener
from auto_review.sandbox.errors import (
    KernelFeatureMissing,
    SandboxError,
    SandboxPolicyInvalid,
    SandboxSetupError,
)

__all__ = ["EXIT_SETUP_FAILED", "Plan", "run_outer"]

EXIT_SETUP_FAILED = 120
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
# Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve, so reset them.
_RESET = (
    *_FORWARDED,
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGXCPU,
    signal.SIGCHLD,
    signal.SIGALRM,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


@dataclass(frozen=True)
class Plan:
    """Everything the children need, computed by the parent before fork (pure data)."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str
    parent_pid: int
    outer_uid: int
    outer_gid: int
    ns_flags: int
    view: mounts.View | None
    tmp_size_bytes: int
    landlock_rules: landlock.LandlockRules | None
    seccomp_program: bytes | None
    limits: limits.Limits
    extra_processes: int
    stdio: tuple[int, int, int]
    pass_fds: tuple[tuple[int, int], ...]  # (number in the job, number in the caller)
    expected: posture.Expected
    timeout_seconds: float | None
    cgroup: tuple[str, str, int | None, int | None] | None = None  # parent, name, mem, pids
    landlock_abi: int = 0
    # Set when root starts a full-tier sandbox: the job gets its own user namespace mapping
    # SANDBOX_ID to this unprivileged host id (namespaces.ROOT_JOB_HOST_ID).
    job_host_id: int | None = None
    # With job_host_id: a user namespace mapping 0 to it, for id-mapped writable binds (made
    # once per calling process, see namespaces.shared_idmap_fd).
    idmap_fd: int | None = None
    # Set when root starts a restricted-tier sandbox (no user namespace to map): the job
    # becomes this host uid/gid for real (identity.py; docs/adr/0010).
    job_uid: int | None = None
    last_cap: int = 63
    disk: diskcap.DiskWatch | None = None  # the writable places the supervisor caps
    extra: dict[str, Any] = field(default_factory=dict)
    # A proxied policy (full tier, egress pairs): A sends the egress listener here (egress.py).
    egress_fd: int | None = None


def _send(fd: int, message: dict[str, Any]) -> None:
    # One write per message, below PIPE_BUF, so messages from B and C never interleave.
    os.write(fd, (json.dumps(message, default=str)[:4000] + "\n").encode())


def _finish(report_fd: int, done_w: int, line: bytes) -> NoReturn:
    """B's last words: the report, then EOF for the caller and the go-ahead for A to exit."""
    send_line(report_fd, line)
    os.close(report_fd)
    os.write(done_w, b"d")
    os._exit(0)


def _fail(report_fd: int, step: str, exc: BaseException) -> NoReturn:
    message: dict[str, Any] = {"event": "error", "kind": "setup", "step": step}
    if isinstance(exc, KernelFeatureMissing):
        message.update(kind="feature", feature=exc.feature, fix=exc.fix, detail=exc.detail)
    elif isinstance(exc, SandboxPolicyInvalid):
        message.update(kind="policy")
    elif isinstance(exc, SandboxSetupError):
        message.update(step=exc.step, path=exc.path, errno=exc.errno)
    elif isinstance(exc, OSError):
        message.update(errno=exc.errno, path=exc.filename)
    if isinstance(exc, SandboxError):
        message["message"] = exc.message
    else:
        message["message"] = f"{type(exc).__name__}: {exc}"
    try:
        _send(report_fd, message)
    finally:
        os._exit(EXIT_SETUP_FAILED)


def _reset_signals() -> None:
    for sig in _RESET:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _forward_to(pid: int, signals: tuple[signal.Signals, ...] = _FORWARDED) -> None:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in signals:
        signal.signal(sig, forward)


def _arrange_fds(plan: Plan, report_fd: int) -> tuple[int, int | None, int | None]:
    """Put stdio and passed fds at their numbers, close every other fd; return the new
    numbers of report_fd, the id-map namespace fd and the egress channel (close-on-exec)."""
    targets = {0: plan.stdio[0], 1: plan.stdio[1], 2: plan.stdio[2], **dict(plan.pass_fds)}
    base = max([*targets, *targets.values(), report_fd, plan.idmap_fd or 0, 2]) + 1
    base = max(base, (plan.egress_fd or 0) + 1)
    report_fd = fcntl.fcntl(report_fd, fcntl.F_DUPFD_CLOEXEC, base)
    idmap, egress_fd = (
        None if fd is None else fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base)
        for fd in (plan.idmap_fd, plan.egress_fd)
    )
    staged = {t: fcntl.fcntl(s, fcntl.F_DUPFD_CLOEXEC, base) for t, s in targets.items()}
    for target, source in staged.items():
        os.dup2(source, target, inheritable=True)
    limits.close_fds_except({*targets, report_fd, *(fd for fd in (idmap, egress_fd) if fd)})
    return report_fd, idmap, egress_fd


def _drop_job_fds(plan: Plan) -> None:
    """Close our copies of the job's stdio and passed fds once the job's side holds them, so the
    caller sees EOF when the job's tree ends, not when the outer child and supervisor do."""
    for fd in {0, 1, 2, *(target for target, _source in plan.pass_fds)}:
        os.close(fd)


def run_outer(plan: Plan, report_fd: int) -> NoReturn:
    """Process A: hygiene, namespaces, then fork the supervisor and wait for it."""
    step = "outer"
    try:
        # A collection here would touch every tracked object of the caller's heap, each page
        # a copy-on-write fault; these short-lived processes leave cycles to os._exit (F3).
        gc.disable()
        _reset_signals()
        step = "die-with-parent"  # closes: a sandbox outliving the caller that owns it
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != plan.parent_pid:
            os._exit(EXIT_SETUP_FAILED)
        step = "setsid"  # closes: TIOCSTI/job-control on the caller's terminal (CVE-2017-5226)
        os.setsid()
        step = "fds"
        report_fd, idmap_fd, egress_fd = _arrange_fds(plan, report_fd)
        if plan.cgroup is not None:
            step = "cgroup"
            limits.join_cgroup(*plan.cgroup)
        if plan.ns_flags:
            step = "namespaces"
            namespaces.enter_namespaces(plan.ns_flags, plan.outer_uid, plan.outer_gid)
        if egress_fd is not None:
            step = "egress-listener"  # closes: egress to any address (F9); the job's only way out
            open_listener(egress_fd)
        if plan.view is not None:
            # Here rather than in B: the pages this Python work dirties are mostly ones A has
            # copied already, while a fresh B would copy them all again (F3).
            step = "mounts"
            mounts.stage_root(plan.view, plan.tmp_size_bytes, idmap_fd)
        if idmap_fd is not None:
            os.close(idmap_fd)
        step = "fork-supervisor"
        # closes: the job's daemons outliving a supervisor killed alone (no pid namespace)
        kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
        lifeline_r, lifeline_w = os.pipe2(os.O_CLOEXEC)
        done_r, done_w = os.pipe2(os.O_CLOEXEC)
        pid = kernel.fork_single_threaded()
        if pid == 0:
            os.close(lifeline_w)
            os.close(done_r)
            _run_supervisor(plan, report_fd, (lifeline_r, done_w))
        os.close(lifeline_r)
        os.close(done_w)
        os.close(report_fd)
        _drop_job_fds(plan)
        _forward_to(pid, (*_FORWARDED, STOP_SIGNAL))
        # One byte once B has reported and the job's tree is gone; EOF if B died, and then its
        # orphans are ours to kill. We exit without waiting for B's own teardown (pid 1, it
        # dies with us by PR_SET_PDEATHSIG), unless the caller must remove the cgroup B is in.
        if os.read(done_r, 1) != b"d":
            kill_descendants()
        if plan.cgroup is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os._exit(0)
    except BaseException as exc:
        _fail(report_fd, step, exc)


class _Deadline(Exception):
    pass


class _Stop(Exception):
    pass


def _on_alarm(_signum: int, _frame: object) -> None:
    raise _Deadline


def _on_stop(_signum: int, _frame: object) -> None:
    raise _Stop


def _run_supervisor(plan: Plan, report_fd: int, outer: tuple[int, int]) -> NoReturn:
    """Process B: build the root, fork the job, reap, enforce the deadline, report."""
    step = "supervisor"
    lifeline_r, done_w = outer
    try:
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([lifeline_r], [], [], 0)[0]:  # A died before PDEATHSIG was armed
            os._exit(EXIT_SETUP_FAILED)
        # closes: the job reading this process's memory (a copy of the caller's) via
        # /proc/1/mem or ptrace: only CAP_SYS_PTRACE could, and the job has none.
        kernel.prctl(kernel.PR_SET_DUMPABLE, 0)
        if plan.view is not None:
            step = "mounts"
            pid_cap = mounts.enter_root(plan.limits.processes)
            send_line(report_fd, b'{"event":"pid_cap","value":%s}' % json_int(pid_cap))
        else:
            step = "subreaper"  # without a pid namespace, orphans must still come back to us
            kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
        step = "disk-cap"  # its baseline, taken before the job can write (diskcap.py)
        disk = None if plan.disk is None else diskcap.open_watch(plan.disk)
        if disk is not None:
            _send(report_fd, {"event": "disk_cap", **disk.describe()})
        step = "fork-job"
        c2b_r, c2b_w = os.pipe2(os.O_CLOEXEC)
        b2c_r, b2c_w = os.pipe2(os.O_CLOEXEC)
        pid = kernel.fork_single_threaded()
        if pid == 0:
            os.close(lifeline_r)
            os.close(done_w)
            os.close(c2b_r)
            os.close(b2c_w)
            _run_job(plan, report_fd, (b2c_r, c2b_w))
        os.close(c2b_w)
        os.close(b2c_r)
        if plan.job_host_id is not None:
            step = "map-job-user"  # the job asked for its map: it is in its own user ns now
            if os.read(c2b_r, 1) == b"u":
                namespaces.map_user_namespace(pid, plan.job_host_id)
                os.write(b2c_w, b"m")
        os.close(c2b_r)
        os.close(b2c_w)
        _drop_job_fds(plan)
        _forward_to(pid)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.signal(STOP_SIGNAL, _on_stop)  # the parent's "kill the job tree now"
        if plan.timeout_seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, max(plan.timeout_seconds, 0.001))
        try:
            if not plan.ns_flags & kernel.CLONE_NEWPID:
                # closes: the job's daemons outliving a killed launcher: no pid namespace ends
                # them, so A's death asks us to kill the tree (armed once the handler is set).
                kernel.prctl(kernel.PR_SET_PDEATHSIG, STOP_SIGNAL)
                if select.select([lifeline_r], [], [], 0)[0]:
                    raise _Stop
            status = None if disk is None else disk.wait(pid)  # the watch polls while it waits
            while status is None:
                try:
                    waited, raw = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                if waited == pid:
                    status = raw
        except (_Deadline, _Stop, diskcap.DiskCapExceeded) as stop:
            signal.setitimer(signal.ITIMER_REAL, 0)
            kill_descendants()
            if isinstance(stop, diskcap.DiskCapExceeded):  # closes: many files < RLIMIT_FSIZE
                message = {"event": "limit", "limit": "disk", "message": str(stop)}
                line = json.dumps(message)[:4000].encode()
            else:
                line = b'{"event":"%s"}' % (
                    b"timeout" if isinstance(stop, _Deadline) else b"stopped"
                )
            _finish(report_fd, done_w, line)
        signal.setitimer(signal.ITIMER_REAL, 0)
        kill_descendants()  # closes: daemons (setsid, double fork) outliving the job
        _finish(report_fd, done_w, b'{"event":"exit","status":%s}' % json_int(status))
    except BaseException as exc:
        _fail(report_fd, step, exc)


def _run_job(plan: Plan, report_fd: int, handshake: tuple[int, int]) -> NoReturn:
    """Process C: confine itself step by step, read the result back, then execve."""
    step = "job"
    try:
        kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)
        if plan.job_uid is not None:
            step = "job-host-user"  # root started us and there is no user namespace
            supervisor = os.getppid()
            identity.become_host_user(plan.job_uid, plan.last_cap)
            kernel.prctl(kernel.PR_SET_PDEATHSIG, signal.SIGKILL)  # the uid change cleared it
            if os.getppid() != supervisor:
                os._exit(EXIT_SETUP_FAILED)
        from_parent, to_parent = handshake
        if plan.job_host_id is not None:
            step = "job-user-namespace"  # root started us: leave host uid 0 for good
            kernel.unshare(kernel.CLONE_NEWUSER)
            os.write(to_parent, b"u")
            if os.read(from_parent, 1) != b"m":
                raise SandboxSetupError(
                    "the supervisor did not map the job's user namespace", step=step
                )
            namespaces.become_sandbox_user()
        os.close(from_parent)
        os.close(to_parent)
        step = "chdir"
        os.chdir(plan.cwd)
        step = "read-namespaces"
        # Opened before Landlock, read after seccomp: the fd reports the state at read time.
        status_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        ns = posture.namespace_ids()
        step = "rlimits"
        applied = limits.apply_rlimits(plan.limits, extra_processes=plan.extra_processes)
        step = "no-new-privs"  # before Landlock and seccomp: both require it unprivileged
        limits.set_no_new_privs()
        ll = landlock.LandlockResult(abi=0)
        if plan.landlock_rules is not None:
            step = "landlock"
            ll = landlock.restrict(plan.landlock_rules, plan.landlock_abi)
            if plan.job_uid is not None:
                step = "job-paths"  # refuse up front what the job's uid could not use anyway
                rules = plan.landlock_rules
                identity.require_access(rules.read_paths, rules.write_paths, plan.job_uid)
        step = "capabilities"
        bounding = limits.drop_capabilities(plan.last_cap)
        step = "signals"
        _reset_signals()
        if plan.seccomp_program is not None:
            step = "seccomp"  # last before execve: nothing after it needs a denied call
            seccomp.install(plan.seccomp_program)
        step = "read-back"
        status = posture.parse_status(os.pread(status_fd, 16384, 0).decode("ascii", "replace"))
        os.close(status_fd)
        expected = plan.expected
        problems = posture.mismatches(expected, status, ns)
        if plan.expected.bounding_set_empty and not bounding:
            problems.append("the bounding set could not be dropped (no CAP_SETPCAP)")
        if problems:
            _send(
                report_fd,
                {
                    "event": "error",
                    "kind": "posture",
                    "step": "read-back",
                    "message": "; ".join(problems),
                },
            )
            os._exit(EXIT_SETUP_FAILED)
        exec_writable = posture.exec_mounted(
            plan.landlock_rules.write_paths if plan.landlock_rules else ()
        )
        line = posture_line(
            status, ns, applied, bounding=bounding, exec_writable=exec_writable, ll=ll
        )
        send_line(report_fd, line)
        step = "execve"
        os.execvpe(plan.argv[0], list(plan.argv), plan.env)  # noqa: S606 - exec is the point
    except BaseException as exc:
        _fail(report_fd, step, exc)

"""Job sandboxes: run a command, or a Python callable in a fresh interpreter, under a policy.

    run_command(argv, policy, *, stdin=b"", env=None, cwd=None, timeout, memory_bytes=None,
                max_output_bytes=16 MiB, isolation=Tier.FULL) -> CompletedRun
    run_attached(argv, policy, *, stdin_fd=0, stdout_fd=1, stderr_fd=2, env=None, cwd=None,
                 timeout, memory_bytes=None, isolation=Tier.FULL, pass_fds={}) -> CompletedRun
    run_callable("pkg.module:function", payload, policy, *, timeout, memory_bytes=None,
                 max_output_bytes=16 MiB, pythonpath=(), isolation=Tier.FULL) -> bytes

A non-zero exit is a result (``CompletedRun.returncode``; -N when killed by signal N). Errors:
``SandboxTimeout`` (deadline passed; the whole tree was killed), ``SandboxLimitExceeded``
(SIGXCPU, SIGXFSZ, output cap), ``SandboxPolicyViolation`` (killed by SIGSYS: a foreign-arch
syscall), ``SandboxSetupError`` (a step failed; ``step``/``path``/``errno`` say which; ``exit_code``
127/126 when the command was not found / not executable), ``KernelFeatureMissing`` (the tier
cannot hold here), ``SandboxJobFailed`` (run_callable's target failed).

Started by root, a full-tier job runs as host uid/gid 65534 (nobody), never host root: read-only
paths must be readable by others; writable paths are id-mapped so root's files there are its own.

The environment is exactly: PATH, HOME, TMPDIR, LANG defaults overlaid with ``env``; nothing is
inherited. ``run_callable`` execs a fresh interpreter (never inheriting the caller's memory, which
holds tokens and keys) with the interpreter's own files bound read-only at their own paths.
Call from a thread that lives until the call returns (PR_SET_PDEATHSIG follows that thread).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from auto_review.sandbox import kernel, landlock, limits, mounts, namespaces, posture, seccomp
from auto_review.sandbox._child import Plan, run_outer
from auto_review.sandbox._io import Outcome, communicate
from auto_review.sandbox._report import describe
from auto_review.sandbox._worker import WORKER_ARGV_MARKER
from auto_review.sandbox.errors import (
    SandboxJobFailed,
    SandboxLimitExceeded,
    SandboxPolicyViolation,
    SandboxSetupError,
    SandboxTimeout,
)
from auto_review.sandbox.policy import Policy
from auto_review.sandbox.probe import HostSupport, Tier, probe_host, require_tier

__all__ = [
    "CompletedRun",
    "host_support",
    "interpreter_paths",
    "run_attached",
    "run_callable",
    "run_command",
    "worker_argv",
]

_MIB = 1024 * 1024
_DEFAULT_MAX_OUTPUT: Final = 16 * _MIB
_GRACE_SECONDS: Final = 10.0  # the parent's backstop after the supervisor's own deadline
_BASE_ENV: Final = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_DEV_WRITABLE: Final = tuple(f"/dev/{name}" for name in mounts.DEVICES)
_SUPPORT: dict[int, HostSupport] = {}


@dataclass(frozen=True)
class CompletedRun:
    """A finished job: exit status (-N for signal N), captured output, enforced posture."""

    returncode: int
    stdout: bytes
    stderr: bytes
    posture: posture.Posture


def host_support(refresh: bool = False) -> HostSupport:
    """This host's support, probed once per process (a forked child probes again)."""
    pid = os.getpid()
    if refresh or pid not in _SUPPORT:
        _SUPPORT[pid] = probe_host()
    return _SUPPORT[pid]


def interpreter_paths() -> tuple[str, ...]:
    """Files the running interpreter needs, to bind read-only at their own paths."""
    paths = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.realpath(sys.executable),
        sys.executable,
    ]
    meipass = getattr(sys, "_MEIPASS", None)  # PyInstaller one-file: the unpacked files
    if isinstance(meipass, str):
        paths.append(meipass)
    paths.append(str(Path(__file__).resolve().parents[2]))  # where auto_review is imported from
    return tuple(dict.fromkeys(os.path.normpath(p) for p in paths))


def worker_argv(target: str, pythonpath: Sequence[str] = ()) -> list[str]:
    """The argv that runs ``target`` in a fresh interpreter (source tree or frozen build)."""
    extra = [arg for path in pythonpath for arg in ("--path", path)]
    if getattr(sys, "frozen", False):
        return [sys.executable, WORKER_ARGV_MARKER, target, *extra]
    return [sys.executable, "-I", "-B", "-m", "auto_review.sandbox._worker", target, *extra]


def _count_own_processes() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                continue
    return count


def _plan(
    argv: Sequence[str],
    policy: Policy,
    tier: Tier,
    support: HostSupport,
    *,
    env: Mapping[str, str] | None,
    cwd: str | None,
    timeout: float,
    memory_bytes: int | None,
    stdio: tuple[int, int, int],
    pass_fds: Mapping[int, int],
    scratch: str | None,
) -> Plan:
    full = tier is Tier.FULL
    root_job = full and os.geteuid() == 0
    view = mounts.plan_view(policy.ro_paths, policy.rw_paths) if full else None
    # Inside a full-tier sandbox /tmp is its private tmpfs; elsewhere a per-run scratch dir.
    home = "/tmp" if full else (scratch or "/")  # noqa: S108
    child_env = {**_BASE_ENV, "HOME": home, "TMPDIR": home, **dict(env or {})}
    rules = None
    if tier is not Tier.NONE and support.landlock_abi > 0:
        if view is not None:
            read = [p for p, writable in view.binds if not writable] + ["/proc", "/dev"]
            write = [p for p, writable in view.binds if writable] + ["/tmp", *_DEV_WRITABLE]  # noqa: S108
        else:
            read = list(policy.ro_paths)
            write = [*policy.rw_paths, *_DEV_WRITABLE, *([scratch] if scratch else [])]
        rules = landlock.LandlockRules(
            read_paths=tuple(read),
            write_paths=tuple(write),
            bind_ports=policy.tcp_bind_ports,
            connect_ports=policy.tcp_connect_ports,
            list_paths=("/",) if view is not None else (),
        )
    new_ns: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    if full:
        new_ns = ("user", "mnt", "pid", "ipc", "uts", "cgroup") + (
            () if policy.network else ("net",)
        )
        shared = ("net",) if policy.network else ()
    job_limits = policy.limits.with_memory(memory_bytes)
    cgroup = None
    if support.cgroup.available and tier is not Tier.NONE:
        cgroup = (
            limits.cgroup_support().path,
            f"auto-review-{os.getpid()}-{id(argv)}",
            job_limits.address_space_bytes,
            job_limits.processes,
        )
    return Plan(
        argv=tuple(argv),
        env=child_env,
        cwd=cwd or home,
        parent_pid=os.getpid(),
        outer_uid=os.getuid(),
        outer_gid=os.getgid(),
        ns_flags=_ns_flags(policy, full, root_job),
        job_host_id=namespaces.ROOT_JOB_HOST_ID if root_job else None,
        view=view,
        tmp_size_bytes=policy.tmp_size_bytes,
        landlock_rules=rules,
        seccomp_program=None
        if tier is Tier.NONE
        else seccomp.assemble(seccomp.build_filter(policy.socket_families)),
        limits=job_limits,
        extra_processes=0 if full else _count_own_processes(),
        stdio=stdio,
        pass_fds=tuple(pass_fds.items()),
        expected=posture.Expected(
            seccomp=tier is not Tier.NONE,
            bounding_set_empty=full or os.geteuid() == 0,
            new_namespaces=new_ns,
            shared_namespaces=shared,
            host_namespaces=posture.namespace_ids(),
        ),
        last_cap=kernel.last_capability(),
        timeout_seconds=timeout,
        cgroup=cgroup,
        landlock_abi=support.landlock_abi,
    )


def _ns_flags(policy: Policy, full: bool, root_job: bool) -> int:
    if not full:
        return 0
    flags = namespaces.namespace_flags(policy.network)
    # Root keeps the outer namespaces owned by the host's user namespace (only it can bind
    # root-only paths); the job then enters a user namespace of its own (see _child).
    return flags & ~kernel.CLONE_NEWUSER if root_job else flags


def _spawn(plan: Plan) -> tuple[int, int]:
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            os.close(read_fd)
            run_outer(plan, write_fd)
        finally:
            os._exit(120)
    os.close(write_fd)
    return pid, read_fd


def _run(
    argv: Sequence[str],
    policy: Policy,
    *,
    isolation: Tier,
    env: Mapping[str, str] | None,
    cwd: str | None,
    timeout: float,
    memory_bytes: int | None,
    stdin: bytes | None,
    stdio: tuple[int, int, int] | None,
    max_output_bytes: int | None,
    pass_fds: Mapping[int, int],
) -> CompletedRun:
    if not argv:
        raise ValueError("argv must name a command")
    support = require_tier(isolation, host_support())
    scratch = None
    if isolation is not Tier.FULL:  # no private /tmp without a mount namespace
        scratch = tempfile.mkdtemp(prefix="auto-review-scratch-")
    pipes: list[int] = []
    try:
        if stdio is None:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            pipes = [in_r, in_w, out_r, out_w, err_r, err_w]
            child_stdio = (in_r, out_w, err_w)
        else:
            child_stdio = stdio
        plan = _plan(
            argv,
            policy,
            isolation,
            support,
            env=env,
            cwd=cwd,
            timeout=timeout,
            memory_bytes=memory_bytes,
            stdio=child_stdio,
            pass_fds=pass_fds,
            scratch=scratch,
        )
        pid, report_fd = _spawn(plan)
        if stdio is None:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
                pipes.remove(fd)
            outcome = communicate(
                pid,
                report_fd,
                stdin_w=in_w,
                stdin_data=stdin or b"",
                out_r=out_r,
                err_r=err_r,
                backstop=timeout + _GRACE_SECONDS,
                max_output=max_output_bytes,
            )
            pipes.clear()  # communicate closed them
        else:
            outcome = communicate(pid, report_fd, backstop=timeout + _GRACE_SECONDS)
    finally:
        for fd in pipes:
            os.close(fd)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return _finish(outcome, policy, isolation, support, plan.expected.host_namespaces)


def _finish(
    outcome: Outcome, policy: Policy, tier: Tier, support: HostSupport, host_ns: Mapping[str, int]
) -> CompletedRun:
    if outcome.error is not None:
        raise outcome.as_error()
    if outcome.output_exceeded:
        raise SandboxLimitExceeded("the job's output passed max_output_bytes", limit="output")
    if outcome.timed_out:
        raise SandboxTimeout("the job passed its wall-clock deadline; its process tree was killed")
    status = outcome.status
    if status is None:
        raise SandboxSetupError(
            "the sandbox ended without reporting the job's status", step="supervisor"
        )
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGSYS:
            raise SandboxPolicyViolation("the job was killed by seccomp (SIGSYS)")
        if sig == signal.SIGXCPU:
            raise SandboxLimitExceeded("the job used up its CPU time (SIGXCPU)", limit="cpu")
        if sig == signal.SIGXFSZ:
            raise SandboxLimitExceeded(
                "the job hit its file-size limit (SIGXFSZ)", limit="file_size"
            )
        code = -sig
    else:
        code = os.WEXITSTATUS(status)
    root_job = tier is Tier.FULL and os.geteuid() == 0
    job_uid = namespaces.ROOT_JOB_HOST_ID if root_job else os.getuid()
    read_back = {**outcome.posture, "job_host_uid": job_uid}
    report = describe(policy, tier, support, read_back, host_ns)
    return CompletedRun(code, outcome.stdout, outcome.stderr, report)


def run_command(
    argv: Sequence[str],
    policy: Policy,
    *,
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float,
    memory_bytes: int | None = None,
    max_output_bytes: int = _DEFAULT_MAX_OUTPUT,
    isolation: Tier = Tier.FULL,
) -> CompletedRun:
    """Run ``argv`` confined by ``policy``; capture stdout/stderr up to ``max_output_bytes``."""
    return _run(
        argv,
        policy,
        isolation=isolation,
        env=env,
        cwd=cwd,
        timeout=timeout,
        memory_bytes=memory_bytes,
        stdin=stdin,
        stdio=None,
        max_output_bytes=max_output_bytes,
        pass_fds={},
    )


def run_attached(
    argv: Sequence[str],
    policy: Policy,
    *,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float,
    memory_bytes: int | None = None,
    isolation: Tier = Tier.FULL,
    pass_fds: Mapping[int, int] | None = None,
) -> CompletedRun:
    """Run ``argv`` confined, with its stdio on the given fds (``pass_fds``: job fd -> ours)."""
    return _run(
        argv,
        policy,
        isolation=isolation,
        env=env,
        cwd=cwd,
        timeout=timeout,
        memory_bytes=memory_bytes,
        stdin=None,
        stdio=(stdin_fd, stdout_fd, stderr_fd),
        max_output_bytes=None,
        pass_fds=pass_fds or {},
    )


def run_callable(
    target: str,
    payload: bytes,
    policy: Policy,
    *,
    timeout: float,
    memory_bytes: int | None = None,
    max_output_bytes: int = _DEFAULT_MAX_OUTPUT,
    pythonpath: Sequence[str] = (),
    isolation: Tier = Tier.FULL,
) -> bytes:
    """Call ``module:function(payload) -> bytes`` in a fresh, confined interpreter."""
    if ":" not in target:
        raise ValueError("target must look like 'package.module:function'")
    confined = policy.with_extra_read_only((*interpreter_paths(), *pythonpath))
    done = run_command(
        worker_argv(target, pythonpath),
        confined,
        stdin=payload,
        timeout=timeout,
        memory_bytes=memory_bytes,
        max_output_bytes=max_output_bytes,
        isolation=isolation,
    )
    if done.returncode != 0:
        raise SandboxJobFailed(target, done.returncode, done.stderr)
    return done.stdout

"""Job sandboxes: run a command, or a Python callable in a fresh interpreter, under a policy.

    run_command(argv, policy, *, stdin=b"", env=None, cwd=None, timeout, memory_bytes=None,
                max_output_bytes=16 MiB, isolation=Tier.FULL) -> CompletedRun
    run_attached(argv, policy, *, stdin_fd=0, stdout_fd=1, stderr_fd=2, env=None, cwd=None,
                 timeout, memory_bytes=None, isolation=Tier.FULL, pass_fds={}) -> CompletedRun
    run_callable("pkg.module:function", payload, policy, *, timeout, memory_bytes=None,
                 max_output_bytes=16 MiB, pythonpath=(), isolation=Tier.FULL) -> bytes

A non-zero exit is a result (``CompletedRun.returncode``; -N when killed by signal N).
``CompletedRun.egress`` is a proxied job's egress (tunnels, refusals; see _proxy.py), None for a
job without the proxy; a ``SandboxError`` raised while the proxy ran carries it too. Errors:
``SandboxTimeout`` (deadline passed; the whole tree was killed), ``SandboxLimitExceeded``
(SIGXCPU, SIGXFSZ, output cap, disk cap: the whole tree was killed),
``SandboxPolicyViolation`` (killed by SIGSYS: a foreign-arch syscall), ``SandboxSetupError``
(a step failed; ``step``/``path``/``errno`` say which; ``exit_code`` 127/126 when the command
was not found / not executable), ``KernelFeatureMissing`` (the tier cannot hold here),
``SandboxJobFailed`` (run_callable's target failed), ``SandboxPolicyInvalid`` (refused before
anything starts: the policy, or a timeout that is not a number of seconds above 0 and up to
about 24 days, what poll(2) can wait).

Started by root, a full-tier job runs as host uid/gid 65534 (nobody), never host root: read-only
paths must be readable by others; writable paths are id-mapped so root's files there are its own.
A restricted-tier job started by root is host nobody too, with no mapping: its read-only paths
must be readable and its writable paths writable by uid 65534, or it is refused (exit 125).

The environment is exactly: PATH, HOME, TMPDIR, LANG defaults overlaid with ``env``; nothing is
inherited. ``run_callable`` execs a fresh interpreter (never inheriting the caller's memory, which
holds tokens and keys) with the interpreter's own files bound read-only at their own paths.
Call from a thread that lives until the call returns (PR_SET_PDEATHSIG follows that thread).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from auto_review.sandbox import _jobs, _proxy, _scratch, identity, namespaces, posture
from auto_review.sandbox._child import Plan
from auto_review.sandbox._io import PostureHook, communicate
from auto_review.sandbox._plan import build_plan
from auto_review.sandbox._report import describe
from auto_review.sandbox._start import start_outer
from auto_review.sandbox._worker import WORKER_ARGV_MARKER
from auto_review.sandbox.egress import EgressProxy
from auto_review.sandbox.errors import (
    SandboxError,
    SandboxJobFailed,
    SandboxPolicyInvalid,
    SandboxSetupError,
)
from auto_review.sandbox.policy import Policy, frozen_env, interpreter_paths
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
# What the I/O loop's poll(2) can wait (2**31 - 1 ms), less the backstop's grace: a job past it
# could not be supervised (a job server request may carry any number).
_MAX_TIMEOUT: Final = (2**31 - 1) / 1000 - _GRACE_SECONDS
_SUPPORT: dict[int, HostSupport] = {}


@dataclass(frozen=True)
class CompletedRun:
    """A finished job: exit status (-N for signal N), captured output, enforced posture, and
    for a proxied clone what its egress proxy saw."""

    returncode: int
    stdout: bytes
    stderr: bytes
    posture: posture.Posture
    egress: _proxy.EgressReport | None = None


def host_support(refresh: bool = False) -> HostSupport:
    """This host's support, probed once per process (a forked child probes again)."""
    pid = os.getpid()
    if refresh or pid not in _SUPPORT:
        _SUPPORT[pid] = probe_host()
    return _SUPPORT[pid]


def worker_argv(target: str, pythonpath: Sequence[str] = ()) -> list[str]:
    """The argv that runs ``target`` in a fresh interpreter (source tree or frozen build)."""
    extra = [arg for path in pythonpath for arg in ("--path", path)]
    if getattr(sys, "frozen", False):
        return [sys.executable, WORKER_ARGV_MARKER, target, *extra]
    return [sys.executable, "-I", "-B", "-m", "auto_review.sandbox._worker_entry", target, *extra]


def posture_of(
    policy: Policy,
    tier: Tier,
    support: HostSupport,
    read_back: Mapping[str, Any],
    host_ns: Mapping[str, int],
) -> posture.Posture:
    """The Posture of a job from its pre-exec read-back (internal to the package)."""
    job_uid: int | None
    if tier is Tier.FULL:
        job_uid = namespaces.ROOT_JOB_HOST_ID if os.geteuid() == 0 else os.getuid()
    else:  # no user namespace of its own: the uid it read back, as the host sees it
        job_uid = identity.host_uid(read_back.get("status", {}).get("uid", os.getuid()))
    return describe(policy, tier, support, {**read_back, "job_host_uid": job_uid}, host_ns)


def _run(
    argv: Sequence[str],
    policy: Policy,
    *,
    isolation: Tier,
    env: Mapping[str, str] | None,
    cwd: str | None,
    timeout: float | None,
    memory_bytes: int | None,
    stdin: bytes | None,
    stdio: tuple[int, int, int] | None,
    max_output_bytes: int | None,
    pass_fds: Mapping[int, int],
    on_start: Callable[[int], None] | None = None,
    on_posture: PostureHook | None = None,
    subject: str = "the job",  # what runs, in a refusal's words (launch: a service)
) -> CompletedRun:
    if not argv:
        raise ValueError("argv must name a command")
    # closes: a deadline of 0 or less starting a job only to kill it (the supervisor's timer
    # fires at once, F59), and one the I/O loop cannot wait for (F20). NaN fails both.
    if timeout is not None and not 0 < timeout <= _MAX_TIMEOUT:
        raise SandboxPolicyInvalid(
            f"timeout {timeout!r} is not a number of seconds from 0 to {_MAX_TIMEOUT:.0f}"
        )
    support = require_tier(isolation, host_support())
    scratch = None
    if isolation is not Tier.FULL:  # no private /tmp without a mount namespace
        scratch = tempfile.mkdtemp(prefix="auto-review-scratch-")
        job_id = identity.restricted_job_id() if isolation is Tier.RESTRICTED else None
        if job_id is not None:
            _share_with_host_user(scratch, job_id)
    pipes: list[int] = []
    plan: Plan | None = None
    # A proxied policy: the outer child sends its egress listener on this socketpair.
    channel = None
    if isolation is Tier.FULL and policy.egress:
        channel = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proxy: EgressProxy | None = None
    try:
        if stdio is None:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            pipes = [in_r, in_w, out_r, out_w, err_r, err_w]
            child_stdio = (in_r, out_w, err_w)
        else:
            child_stdio = stdio
        plan = build_plan(
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
            egress_fd=None if channel is None else channel[1].fileno(),
        )
        pid, report_fd = start_outer(plan)
        if on_start is not None:
            on_start(pid)
        if channel is not None:
            channel[1].close()
            try:
                proxy = _proxy.start(channel[0], policy, pid)
            except SandboxSetupError:
                os.close(report_fd)  # the outer child is reaped; communicate will not run
                raise
        backstop = None if timeout is None else timeout + _GRACE_SECONDS
        if stdio is None:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
            # communicate closes the rest, also when it raises. closes: a second close here
            # hitting another job's fd that took the number meanwhile (the job server is
            # threaded), and its EBADF skipping the rest of the cleanup.
            pipes.clear()
            outcome = communicate(
                pid,
                report_fd,
                stdin_w=in_w,
                stdin_data=stdin or b"",
                out_r=out_r,
                err_r=err_r,
                backstop=backstop,
                max_output=max_output_bytes,
                on_posture=on_posture,
            )
        else:
            outcome = communicate(pid, report_fd, backstop=backstop, on_posture=on_posture)
    finally:
        # The job tree is gone: nothing may use the listener any more.
        report = None if proxy is None else _proxy.finish(proxy)
        for end in channel or ():
            end.close()
        for fd in pipes:
            os.close(fd)
        if scratch:  # the job shaped it (depth, modes): not shutil.rmtree (_scratch.py)
            _scratch.remove_tree(scratch)
        oom = _release_cgroup(plan)
    try:
        code = outcome.exit_status(oom=oom, subject=subject)
    except SandboxError as exc:  # what a proxied job tried often says why it failed
        exc.egress = report
        raise
    read_back = posture_of(
        policy, isolation, support, outcome.posture, plan.expected.host_namespaces
    )
    return CompletedRun(code, outcome.stdout, outcome.stderr, read_back, report)


def _share_with_host_user(scratch: str, job_id: int) -> None:
    """Root, restricted tier: the job is host nobody (identity.py), so it owns its scratch dir,
    and a one-file build's unpacked files (root-only, 0700 and 0600, by PyInstaller) become
    readable and searchable by others, all the way down (a re-executed worker loads libpython
    and the bundled modules from there), still writable by root only (the full tier id-maps
    them instead)."""
    os.chown(scratch, job_id, job_id)
    meipass = getattr(sys, "_MEIPASS", None)
    if isinstance(meipass, str):
        identity.share_read_only(meipass)


def _release_cgroup(plan: Plan | None) -> bool:
    """Remove the job's cgroup (empty once the tree is gone); True if it saw an OOM kill."""
    if plan is None or plan.cgroup is None:
        return False
    path = os.path.join(plan.cgroup[0], plan.cgroup[1])
    oom = False
    try:
        with open(os.path.join(path, "memory.events"), encoding="ascii") as fh:
            for line in fh:
                key, _, count = line.partition(" ")
                oom = oom or (key == "oom_kill" and int(count) > 0)
    except OSError:
        pass  # no such cgroup (setup failed before it) or no memory controller
    with contextlib.suppress(OSError):
        os.rmdir(path)
    return oom


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
    if _jobs.channel() is not None:  # inside a launched gateway: the job server runs it
        answer = _jobs.remote_run(
            {
                "argv": list(argv),
                "policy": _jobs.policy_to_wire(policy),
                "stdin": _jobs.b64(stdin),
                "env": dict(env or {}),
                "cwd": cwd,
                "timeout": timeout,
                "memory_bytes": memory_bytes,
                "max_output_bytes": max_output_bytes,
                "isolation": str(isolation),
            }
        )
        return CompletedRun(
            int(answer["returncode"]),
            _jobs.unb64(answer["stdout"]),
            _jobs.unb64(answer["stderr"]),
            _jobs.posture_from_wire(answer["posture"]),
            _jobs.egress_from_wire(answer.get("egress")),
        )
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
    if _jobs.channel() is not None:
        raise SandboxSetupError(
            "run_attached is not available inside the gateway sandbox", step="job-channel"
        )
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
        env=frozen_env(),
        stdin=payload,
        timeout=timeout,
        memory_bytes=memory_bytes,
        max_output_bytes=max_output_bytes,
        isolation=isolation,
    )
    if done.returncode != 0:
        failed = SandboxJobFailed(target, done.returncode, done.stderr)
        failed.egress = done.egress
        raise failed
    return done.stdout

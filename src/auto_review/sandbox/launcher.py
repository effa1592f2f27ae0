"""The gateway boundary: run a long-lived service confined, hand it its secrets, relay signals.

    outer launcher (this process, on the host)
     `- outer child: new user/mount/pid/ipc/uts/cgroup namespaces, host network shared
         `- supervisor: pid 1 inside; built the read-only root; reaps; forwards SIGTERM/SIGINT/
            |           SIGHUP; reports the inner exit status and cause
            `- inner process (the gateway): seccomp, Landlock (fs + listen/upstream TCP
               ports), no_new_privs, no capabilities, rlimits; exec'd fresh

Invariants once ``launch`` has started the inner process: its environment is exactly ``env``
plus the inner marker; ``secrets`` reached it only through an inherited pipe (fd
``HANDOFF_FD``), never through disk or its environment; the same pipe carries the posture read
back before exec, which ``read_handoff`` re-checks from inside (with prctl and capget, since
the restricted tier grants no read of /proc).

Out of scope: which secrets and ports the service needs (the CLI decides), restarts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from auto_review.sandbox import _jobs, posture
from auto_review.sandbox._jobserver import MAX_JOB_DEADLINE_SECS
from auto_review.sandbox._report import egress_control
from auto_review.sandbox.errors import (
    SandboxPolicyInvalid,
    SandboxPolicyViolation,
    SandboxSetupError,
)
from auto_review.sandbox.policy import Policy, frozen_env
from auto_review.sandbox.probe import Tier, require_tier
from auto_review.sandbox.spawn import _run, host_support, posture_of, worker_argv

__all__ = [
    "HANDOFF_FD",
    "INNER_ENV_VAR",
    "MAX_JOB_DEADLINE_SECS",
    "InnerHandoff",
    "LaunchResult",
    "is_inner",
    "launch",
    "read_handoff",
]

HANDOFF_FD: Final = 3  # the inner process reads {"secrets", "posture"} JSON here, then EOF
JOB_FD: Final = 4  # the inner process's channel to the job server (when started)
INNER_ENV_VAR: Final = "AR_SANDBOX_INNER"  # value: the name of the policy it runs under
_MAX_HANDOFF: Final = 1024 * 1024  # F_SETPIPE_SZ ceiling by default (/proc/sys/fs/pipe-max-size)
_RELAYED: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass(frozen=True)
class LaunchResult:
    """How the inner process ended: ``returncode`` (-N for signal N), ``cause`` in words."""

    returncode: int
    cause: str
    posture: posture.Posture


@dataclass(frozen=True)
class InnerHandoff:
    """What the inner process receives: its secrets and the posture read back before exec."""

    secrets: Mapping[str, str]
    posture: posture.Posture


def is_inner(environ: Mapping[str, str]) -> bool:
    """True in a process that ``launch`` started (it must serve, not launch again)."""
    return bool(environ.get(INNER_ENV_VAR))


def launch(
    argv: Sequence[str],
    policy: Policy,
    *,
    secrets: Mapping[str, str],
    env: Mapping[str, str],
    isolation: Tier = Tier.FULL,
    cwd: str | None = None,
    stdio: tuple[int, int, int] = (0, 1, 2),
    job_server: bool = False,
    job_egress: Sequence[tuple[str, int]] = (),
    job_deadline: float = MAX_JOB_DEADLINE_SECS,
) -> LaunchResult:
    """Run ``argv`` confined by ``policy`` until it exits; relay SIGTERM/SIGINT/SIGHUP to it.

    With ``job_server``, the inner process's ``run_command``/``run_callable`` calls are served
    by a secret-free job server on the host (see _jobserver.py), granted the policy's paths
    and upstream ports, network jobs (clones) towards the ``job_egress`` pairs only, and
    ``job_deadline`` seconds at most for a job (the longest the service's own jobs need)."""
    support = require_tier(isolation, host_support())
    server = None
    if job_server:
        server = _start_job_server(policy, isolation, job_egress, job_deadline=job_deadline)
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    payload_secrets = json.dumps(dict(secrets))
    if len(payload_secrets) > _MAX_HANDOFF // 2:
        raise SandboxSetupError("secrets too large for the handoff pipe", step="handoff")
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _MAX_HANDOFF)
    host_ns = posture.namespace_ids()
    started: list[int] = []
    handoff: list[posture.Posture] = []

    def on_start(pid: int) -> None:
        started.append(pid)

    def on_posture(read_back: dict[str, Any]) -> None:
        # The inner process has been checked and is about to exec: hand over, then EOF.
        report = posture_of(policy, isolation, support, read_back, host_ns)
        if server is not None:  # what the clone jobs the job server runs for it can reach
            clone = egress_control(
                isolation,
                network=True,
                egress=job_egress,
                connect_ports=sorted({port for _, port in job_egress}),
                name="clone_egress",
            )
            report = dataclasses.replace(report, controls=(*report.controls, clone))
        handoff.append(report)
        data = json.dumps(
            {
                "secrets": json.loads(payload_secrets),
                "posture": report.to_dict(),
                "job_fd": JOB_FD if server else None,
            }
        )
        try:
            os.write(write_fd, data.encode())
        finally:
            os.close(write_fd)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _RELAYED:
            previous[sig] = signal.signal(sig, lambda signum, _f: _relay(started, signum))
    try:
        done = _run(
            argv,
            policy,
            isolation=isolation,
            env={**dict(env), INNER_ENV_VAR: policy.name},
            cwd=cwd,
            timeout=None,
            memory_bytes=None,
            stdin=None,
            stdio=stdio,
            max_output_bytes=None,
            pass_fds={HANDOFF_FD: read_fd, **({JOB_FD: server[1]} if server else {})},
            on_start=on_start,
            on_posture=on_posture,
            subject=f"the {policy.name} service",
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(read_fd)
        if not handoff:
            os.close(write_fd)
        if server is not None:
            _stop_job_server(*server)
    code = done.returncode
    cause = f"exited with status {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
    return LaunchResult(code, cause, handoff[0] if handoff else done.posture)


def _start_job_server(
    policy: Policy,
    tier: Tier,
    egress: Sequence[tuple[str, int]],
    io_timeout: float = 30.0,
    *,
    job_deadline: float = MAX_JOB_DEADLINE_SECS,
) -> tuple[subprocess.Popen[bytes], int]:
    """Exec a fresh interpreter (no secrets in its memory) serving the gateway's job requests
    (``io_timeout``: how long the server waits for a request, and for its answer to be read;
    the gateway sends and reads at once; ``job_deadline``: the most any job may run)."""
    if not 0 < job_deadline <= MAX_JOB_DEADLINE_SECS:  # NaN fails the comparison too
        raise SandboxPolicyInvalid(
            f"job_deadline {job_deadline!r} is not a number of seconds from 0 to "
            f"{MAX_JOB_DEADLINE_SECS:.0f}"
        )
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    grant = {
        "fd": ours.fileno(),
        "tier": str(tier),
        "state_dir": policy.rw_paths[0],
        "ro_roots": [*policy.ro_paths, *policy.rw_paths],
        "ports": list(policy.tcp_connect_ports or ()),
        "egress": [[host, port] for host, port in egress],
        "io_timeout": io_timeout,
        "job_deadline": job_deadline,
    }
    proc = subprocess.Popen(
        worker_argv("auto_review.sandbox._jobserver:serve"),
        stdin=subprocess.PIPE,
        pass_fds=[ours.fileno()],
        env={"PATH": os.defpath, "LANG": "C.UTF-8", **frozen_env()},
        start_new_session=True,
    )
    if proc.stdin is not None:  # always, with stdin=PIPE
        proc.stdin.write(json.dumps(grant).encode())
        proc.stdin.close()
    ours.close()
    channel = theirs.detach()
    os.set_inheritable(channel, False)
    return proc, channel


def _stop_job_server(proc: subprocess.Popen[bytes], channel: int) -> None:
    os.close(channel)  # with the gateway gone, the server sees EOF and exits
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _relay(started: list[int], signum: int) -> None:
    for pid in started:  # the outer child forwards to the supervisor, which forwards inward
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def read_handoff(fd: int = HANDOFF_FD) -> InnerHandoff:
    """Inside: read secrets and posture from ``fd`` (then close it) and re-check the posture."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = json.loads(b"".join(chunks) or b"{}")
    if "posture" not in data:
        raise SandboxSetupError("no handoff from the launcher on fd 3", step="handoff")
    raw = data["posture"]
    report = posture.Posture(
        tier_requested=raw["tier_requested"],
        tier_effective=raw["tier_effective"],
        policy=raw["policy"],
        controls=tuple(posture.Control(**c) for c in raw["controls"]),
        read_back=raw.get("read_back", {}),
    )
    now = posture.read_back_by_syscall()
    expected = report.read_back.get("status", {})
    drift = [
        k
        for k in ("no_new_privs", "seccomp", "cap_eff", "cap_prm")
        if now.get(k) != expected.get(k)
    ]
    if drift:
        raise SandboxPolicyViolation(
            f"posture read back inside differs from the launcher's: {drift}"
        )
    if data.get("job_fd") is not None:
        _jobs.attach(int(data["job_fd"]))
    return InnerHandoff(dict(data.get("secrets", {})), report)

"""The job server: runs job sandboxes that a launched gateway asks for, never holding a secret.

Started by ``launch(..., job_server=True)`` as a fresh interpreter through the worker entry
(``_jobserver:serve``, the grant as its JSON payload), before the gateway starts. Each request
arrives as a socket fd on the SOCK_SEQPACKET channel and is served on its own thread (the
sandbox forks single-threaded children itself), at most 16 at once (the rest wait in the
channel), its reads and writes bounded in size and time. A request is refused unless its
policy stays within the grant: read-only paths beneath the granted roots, writable paths
beneath the state dir, no listening, network only for ``clone`` and only towards granted (host,
port) pairs (the forge's), through the egress proxy this server runs for the job. A job's
deadline must be a positive number of seconds and is cut to the grant's ``job_deadline`` (at
most ``MAX_JOB_DEADLINE_SECS``). Exits when the gateway closes the channel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import select
import socket
import threading
from collections.abc import Mapping
from typing import Any, Final

from auto_review.sandbox import _jobs
from auto_review.sandbox.egress import normalise_host
from auto_review.sandbox.errors import SandboxError, SandboxPolicyInvalid
from auto_review.sandbox.policy import DEFAULT_LIMITS, DEFAULT_TMP_SIZE, Policy, clamp_limits
from auto_review.sandbox.probe import Tier
from auto_review.sandbox.spawn import run_command

__all__ = ["MAX_JOB_DEADLINE_SECS", "check_grant", "check_paths", "job_deadline", "serve"]

_JOB_POLICIES = ("run", "analyze", "clone")
# closes: a subverted gateway exhausting the host by the number of jobs (F7); review
# concurrency is at most 64 (settings), each job runs a handful of sandboxes in sequence.
_MAX_JOBS = 16
# closes: a subverted gateway making the server buffer a job's output without bound (it ran
# with max_output_bytes as sent); the gateway asks for 16 MiB at most (analysis results).
_MAX_OUTPUT = 16 * 1024 * 1024
# closes: 16 requests of 256 MiB (the channel's own bound) held at once in host memory, each
# parsed and decoded again; a request is argv, a policy and a payload of KiBs to a few MiB.
_MAX_REQUEST = 32 * 1024 * 1024
# The most any grant may give one job, for a grant without ``job_deadline``: the gateway's
# longest job is a clone step (AR_CLONE_TIMEOUT_SECS, at most an hour by its settings).
MAX_JOB_DEADLINE_SECS: Final = 3600.0


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _absolute(path: str) -> str:
    if not os.path.isabs(path):
        raise SandboxPolicyInvalid(f"job server refuses relative path {path}")
    return os.path.normpath(path)


def check_paths(policy: Policy, grant: Mapping[str, Any]) -> None:
    """Refuse a job path outside the grant, before anything looks at it on this host.

    closes: a subverted gateway learning which host files exist and where symlinks are (the
    server runs as the operator or root): the policy's own validation stats every path."""
    roots, state = list(grant["ro_roots"]), str(grant["state_dir"])
    for path in map(_absolute, policy.ro_paths):
        if not any(_within(path, root) for root in [*roots, state]):
            raise SandboxPolicyInvalid(f"job server refuses read-only path {path}")
    for path in map(_absolute, policy.rw_paths):
        if not _within(path, state):
            raise SandboxPolicyInvalid(f"job server refuses writable path {path} (not in {state})")


def check_grant(policy: Policy, grant: Mapping[str, Any]) -> None:
    """Refuse a job policy that reaches beyond what the gateway was granted."""
    if policy.name not in _JOB_POLICIES:
        raise SandboxPolicyInvalid(f"job server refuses policy {policy.name!r}")
    check_paths(policy, grant)
    if policy.tcp_bind_ports != ():
        raise SandboxPolicyInvalid("job server refuses a job that may listen")
    if policy.network:
        # closes: a subverted gateway asking for the host network (any address on a granted
        # port, F9) instead of the forge: network jobs are clones, proxied to granted pairs.
        granted = {(normalise_host(str(h)), int(p)) for h, p in grant.get("egress", ())}
        if policy.name != "clone" or not policy.egress or not set(policy.egress) <= granted:
            raise SandboxPolicyInvalid(
                f"job server refuses network access {list(policy.egress)} (granted: "
                f"{sorted(map(str, granted))})"
            )
        ports = policy.tcp_connect_ports
        if ports is None or not set(ports) <= set(grant["ports"]):
            raise SandboxPolicyInvalid(f"job server refuses TCP ports {ports}")


def _clamped(policy: Policy) -> Policy:
    """closes: a subverted gateway lifting a job's limits (F7): each limit and the /tmp size
    are clamped to the named policy's defaults, since the server runs outside the gateway's."""
    if policy.name not in _JOB_POLICIES:
        raise SandboxPolicyInvalid(f"job server refuses policy {policy.name!r}")
    return dataclasses.replace(
        policy,
        limits=clamp_limits(policy.limits, DEFAULT_LIMITS[policy.name]),
        tmp_size_bytes=min(policy.tmp_size_bytes, DEFAULT_TMP_SIZE),
    )


def job_deadline(requested: object, grant: Mapping[str, Any]) -> float:
    """The deadline a job runs with: ``requested`` cut to the grant's ceiling; refused unless
    it is a positive number of seconds.

    closes: a subverted gateway holding a job, and with it one of the 16 slots and a host
    process tree, for as long as poll(2) can wait (~24 days), or asking for NaN, infinity or
    a negative deadline (F59)."""
    # NaN fails both comparisons; an int too large for a float still compares with inf.
    if isinstance(requested, bool) or not isinstance(requested, int | float):
        raise SandboxPolicyInvalid(f"job server refuses timeout {requested!r}: not a number")
    if not 0 < requested < math.inf:
        raise SandboxPolicyInvalid(
            f"job server refuses timeout {requested!r}: not a positive number of seconds"
        )
    ceiling = min(float(grant.get("job_deadline", MAX_JOB_DEADLINE_SECS)), MAX_JOB_DEADLINE_SECS)
    return float(min(requested, ceiling))


def _serve_one(fd: int, grant: Mapping[str, Any], slots: threading.BoundedSemaphore) -> None:
    try:
        _serve(fd, grant)
    finally:
        slots.release()  # taken by serve() before it started this thread


def _serve(fd: int, grant: Mapping[str, Any]) -> None:
    try:
        conn = socket.socket(fileno=fd)
    except OSError:
        # closes: a subverted gateway filling this server's fd table with pipes or files
        # (ENOTSOCK used to end the thread and leave the fd open for good).
        os.close(fd)
        return
    with conn:
        # closes: a subverted gateway making this server hold its own channel's other end,
        # so that it never sees the gateway go and stays on the host: handed over as a
        # request (any socket but a unix stream is closed at once), or queued in flight
        # behind a request that is never finished or whose answer is never read (every read
        # and write of a request gives up after the timeout, which releases its queue).
        if (conn.family, conn.type) != (socket.AF_UNIX, socket.SOCK_STREAM):
            return
        conn.settimeout(float(grant["io_timeout"]))
        try:
            request = _jobs.recv_message(conn, _MAX_REQUEST)
            wire = request["policy"]
            policy = _clamped(_jobs.policy_from_wire(wire, lambda p: check_paths(p, grant)))
            check_grant(policy, grant)
            timeout = job_deadline(request["timeout"], grant)
            ceiling = DEFAULT_LIMITS[policy.name].address_space_bytes
            memory = request["memory_bytes"]
            if ceiling is not None:
                memory = ceiling if memory is None else min(int(memory), ceiling)
            done = run_command(
                list(request["argv"]),
                policy,
                stdin=_jobs.unb64(request["stdin"]),
                env=dict(request["env"]),
                cwd=request["cwd"],
                timeout=timeout,
                memory_bytes=memory,
                max_output_bytes=min(int(request["max_output_bytes"]), _MAX_OUTPUT),
                isolation=Tier(grant["tier"]),
            )
            answer: dict[str, Any] = {
                "ok": True,
                "returncode": done.returncode,
                "stdout": _jobs.b64(done.stdout),
                "stderr": _jobs.b64(done.stderr),
                "posture": done.posture.to_dict(),
                "egress": _jobs.egress_to_wire(done.egress),
            }
        except SandboxError as exc:
            answer = _jobs.error_to_wire(exc)
        except Exception as exc:  # a malformed request is refused, never fatal to the server
            answer = {
                "error": "SandboxError",
                "message": f"job server: {type(exc).__name__}: {exc}",
            }
        with contextlib.suppress(OSError):  # the caller went away; nothing to tell
            _jobs.send_message(conn, answer)


def _hung_up(control: socket.socket) -> bool:
    """Whether the channel's other end is closed. recv answers nothing both at that end and
    for an empty record, which the gateway may send (closes: one empty record stopping the
    server, and with it every later job)."""
    poller = select.poll()
    poller.register(control, select.POLLRDHUP)
    return any(events & (select.POLLHUP | select.POLLRDHUP) for _fd, events in poller.poll(0))


def serve(payload: bytes) -> bytes:
    """Worker entry: serve requests on the granted channel until it closes."""
    grant = json.loads(payload)
    slots = threading.BoundedSemaphore(_MAX_JOBS)
    control = socket.socket(fileno=int(grant["fd"]))
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 16, 4)
        except OSError:
            break
        if not message and not fds and _hung_up(control):
            break  # every holder of the other end (the gateway's processes) is gone
        if not _start(fds, grant, slots, control):
            break
    control.close()
    return b""


def _start(
    fds: list[int],
    grant: Mapping[str, Any],
    slots: threading.BoundedSemaphore,
    control: socket.socket,
) -> bool:
    """Serve each request fd on a thread of its own, started only with a slot free: the rest
    wait in the channel. closes: a subverted gateway piling up idle requests, each a thread
    (a host task: enough of them use up the host's pids), bounded only by the fd limit.
    False when the gateway went away while every slot was taken (nobody waits for these)."""
    for i, fd in enumerate(fds):
        while not slots.acquire(timeout=1.0):
            if _hung_up(control):
                for rest in fds[i:]:
                    os.close(rest)
                return False
        threading.Thread(target=_serve_one, args=(fd, grant, slots), daemon=True).start()
    return True

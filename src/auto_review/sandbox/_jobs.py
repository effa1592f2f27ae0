"""Job sandboxes requested from inside the gateway sandbox, run by a secret-free job server.

Inside the gateway, seccomp forbids unshare and Landlock forbids mounts, so job sandboxes cannot
nest. Instead ``run_command`` there sends the request over an inherited unix socket (a fresh
socketpair per request, passed with SCM_RIGHTS) to the job server: a freshly exec'd interpreter
on the host that never saw a secret. The server re-validates the policy against what the
gateway may grant (paths beneath its state dir, the system and interpreter views, its upstream
ports) so a subverted gateway cannot use it as a deputy, runs the job, and answers.

Wire format: 4-byte big-endian length, then JSON; bytes fields are base64.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from auto_review.sandbox import errors
from auto_review.sandbox._proxy import EgressReport
from auto_review.sandbox.limits import Limits
from auto_review.sandbox.policy import Policy, _validated
from auto_review.sandbox.posture import Control, Posture

__all__ = [
    "attach",
    "channel",
    "egress_from_wire",
    "egress_to_wire",
    "error_from_wire",
    "error_to_wire",
    "policy_from_wire",
    "policy_to_wire",
    "posture_from_wire",
    "recv_message",
    "remote_run",
    "send_message",
]

_CHANNEL: list[int] = []  # the inherited channel fd, once read_handoff attached it
# A request or answer holds a few hundred JSON values (argv, paths, env, a posture); its bulk
# is one base64 string. closes: a message of tiny values ("{}," is 3 bytes, ~70 as a Python
# object) making the host-side job server's parser allocate ~25 times the message's size.
_MAX_VALUES = 65536


def attach(fd: int) -> None:
    """Route this process's run_command calls to the job server on ``fd``."""
    _CHANNEL[:] = [fd]


def channel() -> int | None:
    """The job-server channel fd, or None outside a launched gateway."""
    return _CHANNEL[0] if _CHANNEL else None


def send_message(sock: socket.socket, data: Mapping[str, Any]) -> None:
    """Send one length-prefixed JSON message."""
    raw = json.dumps(data).encode()
    sock.sendall(struct.pack(">I", len(raw)) + raw)


def recv_message(sock: socket.socket, limit: int = 256 * 1024 * 1024) -> dict[str, Any]:
    """Receive one length-prefixed JSON message (refusing one larger than ``limit``)."""
    head = _recv_exact(sock, 4)
    (size,) = struct.unpack(">I", head)
    if size > limit:
        raise errors.SandboxSetupError("job channel message too large", step="job-channel")
    raw = _recv_exact(sock, size)
    # Every value but the first follows a comma or opens a container: an upper bound on how
    # many the parser would build (commas inside strings only make it stricter).
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") > _MAX_VALUES:
        raise errors.SandboxSetupError(
            "job channel message has too many values", step="job-channel"
        )
    data: dict[str, Any] = json.loads(raw)
    return data


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(min(size - len(buf), 1 << 20))
        if not chunk:
            raise errors.SandboxSetupError("job channel closed early", step="job-channel")
        buf += chunk
    return bytes(buf)


def policy_to_wire(policy: Policy) -> dict[str, Any]:
    """A policy as plain data."""
    data = asdict(policy)
    data["limits"] = asdict(policy.limits)
    return data


def policy_from_wire(
    data: Mapping[str, Any], check: Callable[[Policy], None] | None = None
) -> Policy:
    """Rebuild and re-validate a policy from plain data; ``check`` sees it first, before the
    validation looks at any of its paths on this host."""
    ports = {
        k: None if data[k] is None else tuple(int(p) for p in data[k])
        for k in ("tcp_bind_ports", "tcp_connect_ports")
    }
    policy = Policy(
        name=str(data["name"]),
        ro_paths=tuple(data["ro_paths"]),
        rw_paths=tuple(data["rw_paths"]),
        network=bool(data["network"]),
        tcp_bind_ports=ports["tcp_bind_ports"],
        tcp_connect_ports=ports["tcp_connect_ports"],
        limits=Limits(**data["limits"]),
        tmp_size_bytes=int(data["tmp_size_bytes"]),
        egress=tuple((str(host), int(port)) for host, port in data.get("egress", ())),
    )
    if check is not None:
        check(policy)
    return _validated(policy)


def posture_from_wire(data: Mapping[str, Any]) -> Posture:
    """Rebuild a Posture from ``Posture.to_dict()`` output."""
    return Posture(
        tier_requested=str(data["tier_requested"]),
        tier_effective=str(data["tier_effective"]),
        policy=str(data["policy"]),
        controls=tuple(Control(**c) for c in data["controls"]),
        read_back=dict(data.get("read_back", {})),
    )


def egress_to_wire(report: EgressReport | None) -> dict[str, Any] | None:
    """A job's egress report as plain data (None: the job had no proxy)."""
    return None if report is None else report.to_dict()


def egress_from_wire(data: Mapping[str, Any] | None) -> EgressReport | None:
    """The egress report a job server sent, re-bounded (see ``EgressReport.from_dict``)."""
    return None if data is None else EgressReport.from_dict(data)


def error_to_wire(exc: errors.SandboxError) -> dict[str, Any]:
    """A sandbox error as plain data (its class by name, and the attributes callers use)."""
    data: dict[str, Any] = {
        "error": type(exc).__name__,
        "message": exc.message,
        "exit_code": exc.exit_code,
    }
    for attr in ("step", "path", "errno", "limit", "feature", "fix", "detail"):
        if hasattr(exc, attr):
            data[attr] = getattr(exc, attr)
    data["egress"] = egress_to_wire(exc.egress)
    return data


def error_from_wire(data: Mapping[str, Any]) -> errors.SandboxError:
    """The typed error a job server reported."""
    name, message = data.get("error"), str(data.get("message", "job server error"))
    exc: errors.SandboxError
    if name == "KernelFeatureMissing":
        exc = errors.KernelFeatureMissing(
            str(data.get("feature")), str(data.get("fix")), detail=str(data.get("detail", ""))
        )
    elif name == "SandboxLimitExceeded":
        exc = errors.SandboxLimitExceeded(message, limit=str(data.get("limit")))
    elif name in ("SandboxSetupError", "SandboxSyscallError"):
        exc = errors.SandboxSetupError(
            message, step=str(data.get("step")), path=data.get("path"), errno=data.get("errno")
        )
    elif name in ("SandboxTimeout", "SandboxPolicyViolation", "SandboxPolicyInvalid"):
        exc = getattr(errors, name)(message)
    else:
        exc = errors.SandboxError(message)
    exc.exit_code = int(data.get("exit_code", exc.exit_code))
    exc.egress = egress_from_wire(data.get("egress"))
    return exc


def remote_run(request: Mapping[str, Any]) -> dict[str, Any]:
    """Send one job request to the job server; return its successful answer or raise."""
    fd = channel()
    if fd is None:
        raise errors.SandboxSetupError("no job server channel", step="job-channel")
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # The channel is SOCK_SEQPACKET: each request's fd travels in its own record, so
        # concurrent callers (review workers on threads) never interleave.
        with socket.socket(fileno=socket.dup(fd)) as control:
            socket.send_fds(control, [b"j"], [theirs.fileno()])
        theirs.close()
        send_message(mine, request)
        answer = recv_message(mine)
    finally:
        mine.close()
        theirs.close()
    if not answer.get("ok"):
        raise error_from_wire(answer)
    return answer


def b64(data: bytes) -> str:
    """Bytes for JSON."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Bytes from JSON."""
    return base64.b64decode(text)

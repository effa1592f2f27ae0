"""Attacks on the host-side job server by a compromised gateway, over the server's real channel.

The gateway runs confined; the job server (``_jobserver.py``) runs on the host, unconfined, and
takes requests from it. These tests start the real server exactly as ``launch(job_server=True)``
does (``launcher._start_job_server``, the gateway's grant as its payload) and then play the
compromised gateway: they hand it request sockets over its SOCK_SEQPACKET channel, as
``_jobs.remote_run`` does, but write the requests (and the fds) by hand. Each attack has a live
control: the same probe shown to work where nothing stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.unit.sandbox._helpers import require

from auto_review.sandbox import SandboxPolicyInvalid, Tier, _jobs, gateway_policy, run_policy
from auto_review.sandbox.launcher import _start_job_server, _stop_job_server

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox]

_MIB = 1024 * 1024
# The job's own view of three rlimits: "unlimited" where nothing caps it.
_ULIMITS = "ulimit -t; ulimit -f; ulimit -v"


@dataclass(frozen=True)
class Server:
    """A running job server and the gateway's end of its channel."""

    proc: subprocess.Popen[bytes]
    channel: int

    def connect(self, fd: int | None = None) -> socket.socket:
        """Hand the server a request socket (or ``fd``) the way the gateway does."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with socket.socket(fileno=os.dup(self.channel)) as control:
            socket.send_fds(control, [b"j"], [theirs.fileno() if fd is None else fd])
        theirs.close()
        return mine

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one hand-made request and return the server's answer."""
        with self.connect() as conn:
            _jobs.send_message(conn, request)
            return _jobs.recv_message(conn)

    def open_fds(self) -> int:
        """How many descriptors the server holds (read from the host)."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@pytest.fixture
def server(scratch: Path) -> Iterator[Server]:
    require(Tier.FULL)
    state = scratch / "state"
    state.mkdir(mode=0o700)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    grant = gateway_policy(str(state), listen_port=port, upstream_ports=[9])
    proc, channel = _start_job_server(grant, Tier.FULL, [])
    yield Server(proc, channel)
    _stop_job_server(proc, channel)


def _request(policy: dict[str, Any], script: str, **over: Any) -> dict[str, Any]:
    return {
        "argv": ["/bin/sh", "-c", script],
        "policy": policy,
        "stdin": _jobs.b64(b""),
        "env": {},
        "cwd": None,
        "timeout": 60,
        "memory_bytes": None,
        "max_output_bytes": _MIB,
        **over,
    }


def test_job_server_negative_limits_are_blocked_by_limit_validation(server: Server) -> None:
    """Attack: a compromised gateway sends -1 for the job's CPU, file-size and address-space
    limits (and memory). The job server clamps each limit with min(requested, default), which
    keeps -1, and setrlimit reads -1 as RLIM_INFINITY: the job ran on the host with no CPU,
    file-size or memory limit at all (the F7 clamp bypassed). Control: the probe says
    "unlimited" where a limit is unlimited (the host's own CPU limit), and a request with
    ordinary limits runs and reports finite ones. Expected: the request is refused
    (SandboxPolicyInvalid, exit 125) before anything forks."""
    if resource.getrlimit(resource.RLIMIT_CPU)[0] != resource.RLIM_INFINITY:
        pytest.skip("the host's own CPU limit is set; the live control needs it unlimited")
    host = subprocess.run(["/bin/sh", "-c", _ULIMITS], capture_output=True, check=True)
    assert host.stdout.split()[0] == b"unlimited"  # the probe sees an unlimited limit

    base = _jobs.policy_to_wire(run_policy())
    control = server.ask(_request(base, _ULIMITS))
    assert control.get("ok"), control
    assert b"unlimited" not in _jobs.unb64(control["stdout"]), control

    limits = {**base["limits"], "cpu_seconds": -1, "file_size_bytes": -1}
    limits["address_space_bytes"] = -1
    answer = server.ask(_request({**base, "limits": limits}, _ULIMITS, memory_bytes=-1))
    assert not answer.get("ok"), f"ran: {_jobs.unb64(answer['stdout'])!r}"
    assert answer["error"] == "SandboxPolicyInvalid", answer
    assert answer["exit_code"] == 125, answer
    for field in ("cpu_seconds", "file_size_bytes", "address_space_bytes"):
        only = server.ask(_request({**base, "limits": {**base["limits"], field: -1}}, _ULIMITS))
        assert only.get("error") == "SandboxPolicyInvalid", (field, only)
    memory = server.ask(_request(base, _ULIMITS, memory_bytes=-1))
    assert memory.get("error") == "SandboxPolicyInvalid", memory


def test_job_server_output_flood_is_blocked_by_output_cap(server: Server) -> None:
    """Attack: a compromised gateway asks for a job whose output the job server buffers
    without bound (max_output_bytes as sent, e.g. 2**50): a job writing endlessly then fills
    the host's memory in the unconfined server (stdout, then its base64 and JSON copies).
    Control: output below the server's cap comes back whole. Expected: past the cap (16 MiB,
    what the gateway itself asks for at most) the job is stopped with
    SandboxLimitExceeded(limit="output")."""
    base = _jobs.policy_to_wire(run_policy())
    small = server.ask(_request(base, "head -c 1048576 /dev/zero", max_output_bytes=2 * _MIB))
    assert small.get("ok"), small
    assert len(_jobs.unb64(small["stdout"])) == _MIB  # the probe's output arrives

    flood = "head -c 25165824 /dev/zero"  # 24 MiB, past the 16 MiB cap
    answer = server.ask(_request(base, flood, max_output_bytes=1 << 50))
    got = len(_jobs.unb64(answer["stdout"])) if answer.get("ok") else 0
    assert not answer.get("ok"), f"the server buffered {got} bytes of output for the gateway"
    assert answer["error"] == "SandboxLimitExceeded", answer
    assert answer["limit"] == "output", answer


def test_job_server_non_socket_fds_are_blocked_by_closing_them(server: Server) -> None:
    """Attack: a compromised gateway hands the job server pipes instead of request sockets.
    Each one used to end its thread with ENOTSOCK and stay open in the server for good, so
    enough of them fill its fd table and later requests (from the same channel) fail or
    vanish. Control: a real request still runs. Expected: the server closes what it cannot
    serve; its fd count comes back to where it was."""
    base = _jobs.policy_to_wire(run_policy())
    assert server.ask(_request(base, "true")).get("ok")
    before = server.open_fds()
    readers = []
    for _ in range(32):
        read_fd, write_fd = os.pipe()
        with server.connect(read_fd):
            pass
        readers.append(read_fd)
        os.close(write_fd)
    # A request after them is served once the pipes were dealt with (requests are threads;
    # this one's answer orders nothing, so poll the count through more real requests).
    for _ in range(20):
        assert server.ask(_request(base, "true")).get("ok")
        if server.open_fds() <= before:
            break
    for fd in readers:
        os.close(fd)
    assert server.open_fds() <= before, f"the server kept {server.open_fds() - before} pipes"


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_job_server_json_amplification_is_blocked_by_value_bound(server: Server) -> None:
    """Attack: a compromised gateway sends a request of tiny JSON values (``{}`` is 3 bytes,
    ~70 as a Python object): the unconfined server parsed it whole, ~25 times its size in host
    memory, and 16 such requests at once (256 MiB each) ask for ~100 GiB. Control: the same
    bytes, parsed on the host, cost more than ten times their size. Expected: the server
    refuses the message before parsing it, and its peak memory stays near the message's
    size."""
    size = 8 * _MIB
    raw = b'{"pad":[' + b"{}," * (size // 3) + b"{}]}"
    script = "import json,resource,sys; json.loads(sys.stdin.buffer.read()); " + (
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    host = subprocess.run(
        [sys.executable, "-c", script], input=raw, capture_output=True, check=True
    )
    assert int(host.stdout) * 1024 > 10 * size, host  # the probe amplifies where parsed

    before = _peak_rss_kib(server.proc.pid)
    with server.connect() as conn:
        conn.sendall(struct.pack(">I", len(raw)) + raw)
        answer = _jobs.recv_message(conn)
    grown = (_peak_rss_kib(server.proc.pid) - before) * 1024
    assert "too many values" in str(answer.get("message")), answer
    assert grown < 4 * size, f"the server's peak memory grew by {grown >> 20} MiB"
    # Without tiny values, the bulk itself: 16 requests of 256 MiB, each parsed and decoded
    # again, were held at once; a request is KiBs to a few MiB.
    bulk = _request(_jobs.policy_to_wire(run_policy()), "true", stdin="A" * (40 * _MIB))
    with server.connect() as conn:
        with contextlib.suppress(BrokenPipeError):  # refused from its length, unread
            _jobs.send_message(conn, bulk)
        answer = _jobs.recv_message(conn)
    assert "too large" in str(answer.get("message")), answer
    assert server.ask(_request(_jobs.policy_to_wire(run_policy()), "true")).get("ok")


def test_job_server_idle_requests_are_blocked_from_piling_up_threads(server: Server) -> None:
    """Attack: a compromised gateway hands the server request sockets and never writes to
    them. The server started a thread for every one (only 16 run jobs, the rest waited),
    bounded by nothing but its fd limit: threads are host tasks, so tens of thousands of them
    eat the host's pid space (pid_max is 32768 on many hosts). Control: the requests are
    really pending (the server holds their fds). Expected: the server takes a request off
    the channel only when one of its 16 slots is free, so its threads stay at 16 plus its
    own; the rest wait in the kernel, counted against the gateway's fd limit."""
    base = _jobs.policy_to_wire(run_policy())
    assert server.ask(_request(base, "true")).get("ok")
    idle = [server.connect() for _ in range(96)]
    try:
        late = server.connect()
        _jobs.send_message(late, _request(base, "true"))
        # Nothing tells when the server has taken all it will take: watch it for a while
        # (it needs a few ms for all 97 where nothing stops it; the bound only ends the wait).
        for _ in range(100):
            if _threads(server.proc.pid) > 64:
                break
            time.sleep(0.02)
        threads = _threads(server.proc.pid)
        assert server.open_fds() >= 16, "the idle requests never reached the server"
        assert threads <= 16 + 2, f"the server runs {threads} threads for 97 requests"
    finally:
        for conn in idle:
            conn.close()
    assert _jobs.recv_message(late).get("ok")  # served once the idle ones went away
    late.close()


def test_job_server_shutdown_by_empty_record_is_blocked_by_hangup_check(server: Server) -> None:
    """Attack: a compromised gateway sends one empty record on the channel. The server read
    it as the channel's end (recv returns nothing for both on SOCK_SEQPACKET) and exited, so
    every later job of the gateway failed. Control: closing the gateway's end does end the
    server (exercised by every test's teardown; here its exit code is read). Expected: the
    server ignores an empty record while the gateway still holds the channel."""
    with socket.socket(fileno=os.dup(server.channel)) as control:
        control.send(b"")
    base = _jobs.policy_to_wire(run_policy())
    try:
        answer = server.ask(_request(base, "true"))
    except OSError as exc:  # the channel's peer is gone
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    assert answer.get("ok"), f"the server stopped serving: {answer}"
    assert server.proc.poll() is None


def test_job_server_host_path_oracle_is_blocked_by_grant_check_first(
    server: Server, fake_home: Path
) -> None:
    """Attack: a compromised gateway (in the full tier it sees only its view) asks the job
    server, which runs on the host as the operator or root, for jobs on paths outside its
    grant, to learn which host files exist and where symlinks are: the server checked each
    path on the host (exists, islink per component) before the grant, and said "does not
    exist" or "is a symlink" only where that was true. Control: those answers do tell a
    planted file, a missing one and a symlink apart when the policy is built on the host.
    Expected: outside the grant every path gets the same refusal, with no host check."""
    present = fake_home / ".ssh" / "id_ed25519"
    absent = fake_home / ".ssh" / "id_rsa"
    link = fake_home / "link"
    link.symlink_to(present.parent)
    probes = {"present": str(present), "absent": str(absent), "link": str(link / present.name)}

    def refusal(exc: Exception) -> str:
        return str(exc).replace(str(fake_home), "HOME").split(":")[-1]

    host = {}
    for name, path in probes.items():
        try:
            run_policy(rw=[path])
            host[name] = "built"
        except SandboxPolicyInvalid as exc:
            host[name] = refusal(exc)
    assert len(set(host.values())) == 3, host  # the probe tells all three apart on the host

    base = _jobs.policy_to_wire(run_policy())
    seen = {}
    for name, path in probes.items():
        for key in ("rw_paths", "ro_paths"):
            answer = server.ask(_request({**base, key: [*base[key], path]}, "true"))
            assert answer.get("error") == "SandboxPolicyInvalid", answer
            seen[name, key] = answer["message"].replace(path, "PATH")
    for key in ("rw_paths", "ro_paths"):
        answers = {seen[name, key] for name in probes}
        assert len(answers) == 1, f"{key}: the server's answers tell host paths apart: {seen}"
        assert "job server refuses" in answers.pop()


def _malformed(base: dict[str, Any]) -> dict[str, bytes]:
    def req(**over: Any) -> bytes:
        return json.dumps({**_request(base, "true"), **over}).encode()

    with_ro = list(base["ro_paths"])
    return {
        "not json": b"\xff\xfe\x00 not json",
        "not an object": b"[1, 2]",
        "deep arrays": b"[" * 60000 + b"]" * 60000,
        "deep objects": b'{"a":' * 30000 + b"1" + b"}" * 30000,
        "a 5000-digit number": b'{"argv": [' + b"9" * 5000 + b"]}",
        "argv a string": req(argv="/bin/true"),
        "argv empty": req(argv=[]),
        "NUL in argv": req(argv=["/bin/true\x00x"]),
        "lone surrogate in argv": req(argv=["/bin/\ud800"]),
        "a path that is a number": req(policy={**base, "ro_paths": [5]}),
        "relative path": req(policy={**base, "ro_paths": [*with_ro, "usr"]}),
        "env not strings": req(env={"A": 5}),
        "env name with =": req(env={"A=B": "x"}),
        "cwd with NUL": req(cwd="/a\x00"),
        "unknown limit": req(policy={**base, "limits": {**base["limits"], "x": 1}}),
        "port out of range": req(policy={**base, "tcp_connect_ports": [10**30]}),
        "policy name surrogate": req(policy={**base, "name": "\ud800"}),
        "egress pair short": req(policy={**base, "egress": [["a"]]}),
        "timeout not a number": req(timeout="abc"),
        "timeout NaN": req(timeout=float("nan")),
    }


def _idle(server: Server) -> tuple[int, int]:
    """The server's threads and fds once its last request's thread has ended (it answers,
    then closes the request and ends: the answer arrives a moment before)."""
    for _ in range(100):
        if _threads(server.proc.pid) == 1:
            break
        time.sleep(0.02)
    return _threads(server.proc.pid), server.open_fds()


def test_job_server_malformed_requests_are_refused_and_it_keeps_serving(server: Server) -> None:
    """Attack: a compromised gateway sends the unconfined job server malformed framing and
    requests (not JSON, deep nesting, huge numbers, wrong types, NUL bytes and lone
    surrogates in argv and env) hoping to crash or wedge it, or to have a half-checked
    job run. Control: a well-formed request runs. Expected: each malformed one gets an error
    answer (none runs), and the server keeps serving with no thread or fd left behind."""
    base = _jobs.policy_to_wire(run_policy())
    assert server.ask(_request(base, "true")).get("ok")
    before = _idle(server)
    for name, raw in _malformed(base).items():
        with server.connect() as conn:
            conn.sendall(struct.pack(">I", len(raw)) + raw)
            answer = _jobs.recv_message(conn)
        assert not answer.get("ok"), f"{name}: a malformed request ran"
        assert answer.get("error"), (name, answer)
    assert server.ask(_request(base, "true")).get("ok")
    assert server.proc.poll() is None
    assert _idle(server) == before


def _exits_once_the_gateway_is_gone(proc: subprocess.Popen[bytes], channel: int) -> bool:
    """Close the gateway's last end of the channel; whether the server then exits (waiting at
    most well past its I/O timeout, then killing it)."""
    os.close(channel)
    for _ in range(100):
        if proc.poll() is not None:
            return True
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    return False


def test_job_server_outliving_the_gateway_is_blocked_by_request_io_timeout(scratch: Path) -> None:
    """Attack: the job server exits when every holder of the gateway's end of its channel is
    gone; a compromised gateway makes the server itself hold that end, so it never sees the
    end and outlives the gateway (and, if the launcher is killed, stays on the host for good,
    one more per restart): (1) it hands the channel end over as a request socket, which the
    server then reads forever; (2) it queues its request socket's own peer and the channel
    end, in flight, behind a request whose answer (1 MiB) the server then writes forever.
    Control: a server whose gateway closes its end exits. Expected: a request socket that
    is not a unix stream socket is closed at once, and each request's reads and writes give
    up after the I/O timeout (1 s here), releasing what was queued with it."""
    require(Tier.FULL)
    state = scratch / "state"
    state.mkdir(mode=0o700)
    grant = gateway_policy(str(state), listen_port=1, upstream_ports=[9])
    base = _jobs.policy_to_wire(run_policy())

    proc, channel = _start_job_server(grant, Tier.FULL, [], io_timeout=1.0)
    assert _exits_once_the_gateway_is_gone(proc, channel), "control: the server did not exit"

    proc, channel = _start_job_server(grant, Tier.FULL, [], io_timeout=1.0)
    with socket.socket(fileno=os.dup(channel)) as control:
        socket.send_fds(control, [b"j"], [channel])
    assert _exits_once_the_gateway_is_gone(proc, channel), "(1) the server outlived it"

    proc, channel = _start_job_server(grant, Tier.FULL, [], io_timeout=1.0)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with socket.socket(fileno=os.dup(channel)) as control:
        socket.send_fds(control, [b"j"], [theirs.fileno()])
    theirs.close()
    _jobs.send_message(mine, _request(base, "head -c 1048576 /dev/zero", max_output_bytes=2 * _MIB))
    socket.send_fds(mine, [b"\0"], [mine.fileno(), channel])  # in flight, behind the request
    mine.close()
    assert _exits_once_the_gateway_is_gone(proc, channel), "(2) the server outlived it"


def test_job_server_with_every_slot_taken_stops_once_the_gateway_is_gone(scratch: Path) -> None:
    """Check (follows the fix for idle requests piling up threads): with all 16 slots taken
    and more requests queued, the server waits for a slot without reading its channel; it
    must still notice that the gateway is gone and stop, not wait out the jobs it holds
    (here requests that would wait a minute for their I/O timeout). Control: the slots are
    really taken (a queued request is not answered)."""
    require(Tier.FULL)
    state = scratch / "state"
    state.mkdir(mode=0o700)
    grant = gateway_policy(str(state), listen_port=1, upstream_ports=[9])
    proc, channel = _start_job_server(grant, Tier.FULL, [], io_timeout=60.0)
    server = Server(proc, channel)
    held = [server.connect() for _ in range(17)]
    try:
        queued = server.connect()
        held.append(queued)
        _jobs.send_message(queued, _request(_jobs.policy_to_wire(run_policy()), "true"))
        queued.settimeout(0.5)
        with pytest.raises(TimeoutError):
            queued.recv(1)  # no slot for it
        assert _exits_once_the_gateway_is_gone(proc, channel), "the server waited for a slot"
    finally:
        for conn in held:
            conn.close()


def test_job_server_overlong_deadline_is_blocked_by_the_grants_ceiling(scratch: Path) -> None:
    """Attack: a compromised gateway asks the job server for deadlines no job of its needs:
    10**6 s (anything up to the ~24 days poll(2) can wait was run as sent), holding one of
    the 16 slots and a host process tree for that long, or NaN, infinity, 0, a negative
    number or a string. Control: a job within the grant's ceiling runs to its end. Expected:
    a deadline that is not a positive number of seconds is refused (SandboxPolicyInvalid,
    exit 125) before anything forks; a longer one is cut to the grant's ``job_deadline``
    (the gateway's longest job, its clone timeout; 2 s here), where the job is killed
    (SandboxTimeout). Finding F59."""
    require(Tier.FULL)
    state = scratch / "state"
    state.mkdir(mode=0o700)
    grant = gateway_policy(str(state), listen_port=1, upstream_ports=[9])
    proc, channel = _start_job_server(grant, Tier.FULL, [], job_deadline=2.0)
    server = Server(proc, channel)
    base = _jobs.policy_to_wire(run_policy())
    try:
        control = server.ask(_request(base, "sleep 0.5; echo done", timeout=1.5))
        assert control.get("ok"), control
        assert _jobs.unb64(control["stdout"]) == b"done\n"

        started = time.monotonic()
        answer = server.ask(_request(base, "sleep 30; echo done", timeout=10**6))
        took = time.monotonic() - started
        assert answer.get("error") == "SandboxTimeout", answer
        assert took < 15, f"the job ran {took:.0f} s, past the grant's 2 s"

        for bad in (float("nan"), float("inf"), float("-inf"), 0, -5, "60", None, True):
            refused = server.ask(_request(base, "echo ran", timeout=bad))
            assert refused.get("error") == "SandboxPolicyInvalid", (bad, refused)
            assert refused["exit_code"] == 125, (bad, refused)
            assert "job server refuses timeout" in refused["message"], (bad, refused)
    finally:
        _stop_job_server(proc, channel)

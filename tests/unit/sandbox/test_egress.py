"""The egress proxy on real loopback sockets: what it forwards, what it refuses, its bounds.

The proxy here listens on the host's loopback (in a sandbox the listener lives in the job's own
network namespace; see tests/redteam/test_network.py for that path). Every upstream is a
loopback server started by the test that records what reached it.
"""

from __future__ import annotations

import fcntl
import resource
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from auto_review.sandbox._http_head import Refused, parse_head
from auto_review.sandbox._proxy import EgressReport
from auto_review.sandbox.egress import (
    MAX_CONNECTIONS,
    MAX_DESTINATION_CHARS,
    EgressProxy,
    check_pairs,
)

SECRET = "tok-s3cr3t-in-a-header"


@dataclass
class Upstream:
    """A loopback server: records each connection's bytes, answers ``reply``, then closes."""

    sock: socket.socket
    reply: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    received: list[bytes] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.received.append(data)
                    conn.sendall(self.reply)
                except OSError:
                    continue


def _listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, port))
    sock.listen(8)
    return sock


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream(_listen())
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.sock.close()


@pytest.fixture
def other(upstream: Upstream) -> Iterator[Upstream]:
    """A second server on the same port at another loopback address (the attacker)."""
    try:
        sock = _listen("127.0.0.2", upstream.port)
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2:{upstream.port}: {exc}")
    server = Upstream(sock)
    threading.Thread(target=server.serve, daemon=True).start()
    yield server
    sock.close()


def _proxy(allowed: list[tuple[str, int]], **kwargs: float | int) -> EgressProxy:
    return EgressProxy(_listen(), check_pairs(allowed), **kwargs).start()  # type: ignore[arg-type]


def _ask(proxy: EgressProxy, head: bytes, *, then: bytes = b"") -> bytes:
    """Send ``head`` (and ``then``) to the proxy; return everything it answers until EOF."""
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(head)
        if then:
            sock.sendall(then)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_connect_to_the_allowed_origin_is_tunnelled_both_ways(upstream: Upstream) -> None:
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        head = (
            f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\nHost: 127.0.0.1:{upstream.port}\r\n\r\n"
        )
        answer = _ask(proxy, head.encode(), then=b"GET / HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert upstream.received == [b"GET / HTTP/1.1\r\n\r\n"]
    assert proxy.tunnels == 1


def test_connect_host_is_compared_case_insensitively_and_resolved_on_the_host(
    upstream: Upstream,
) -> None:
    with _proxy([("localhost", upstream.port)]) as proxy:
        head = f"CONNECT LocalHost:{upstream.port} HTTP/1.1\r\n\r\n".encode()
        answer = _ask(proxy, head, then=b"GET / HTTP/1.1\r\n\r\n")
    assert _status(answer) == 200
    assert upstream.received == [b"GET / HTTP/1.1\r\n\r\n"]


def test_connect_to_another_address_on_the_allowed_port_is_refused(
    upstream: Upstream, other: Upstream
) -> None:
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        answer = _ask(proxy, f"CONNECT 127.0.0.2:{other.port} HTTP/1.1\r\n\r\n".encode())
    assert _status(answer) == 403
    assert other.received == []
    refused = f"127.0.0.2:{other.port}"  # the destination it named, for the operator
    assert proxy.refusals == [(403, "destination not allowed by the sandbox policy", refused)]


def test_connect_to_another_port_of_the_allowed_host_is_refused(upstream: Upstream) -> None:
    with _proxy([("127.0.0.1", upstream.port + 1 if upstream.port < 65535 else 1)]) as proxy:
        answer = _ask(proxy, f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\n\r\n".encode())
    assert _status(answer) == 403
    assert upstream.received == []


def test_absolute_form_request_is_rewritten_to_origin_form_for_one_request(
    upstream: Upstream,
) -> None:
    body = b"0032want abc\n"
    head = (
        f"POST http://127.0.0.1:{upstream.port}/o/r.git/git-upload-pack?x=1 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{upstream.port}\r\nAuthorization: token {SECRET}\r\n"
        "Proxy-Connection: Keep-Alive\r\nProxy-Authorization: Basic eA==\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        answer = _ask(proxy, head + body)
    assert answer.endswith(b"\r\n\r\nok")
    [seen] = upstream.received
    lines = seen.split(b"\r\n")
    assert lines[0] == b"POST /o/r.git/git-upload-pack?x=1 HTTP/1.1"
    assert f"Authorization: token {SECRET}".encode() in lines  # for the forge, untouched
    assert b"Connection: close" in lines
    assert f"Host: 127.0.0.1:{upstream.port}".encode() in lines
    assert not any(line.lower().startswith(b"proxy-") for line in lines)


def test_absolute_form_request_to_another_host_is_refused_and_only_its_origin_recorded(
    upstream: Upstream, other: Upstream
) -> None:
    head = (
        f"GET http://127.0.0.2:{other.port}/leak HTTP/1.1\r\nAuthorization: token {SECRET}\r\n\r\n"
    ).encode()
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        answer = _ask(proxy, head)
    assert _status(answer) == 403
    assert other.received == []
    # A refusal keeps a fixed reason and the origin, never the path or a header.
    assert proxy.refusals == [
        (403, "destination not allowed by the sandbox policy", f"127.0.0.2:{other.port}")
    ]
    assert SECRET not in repr(proxy.refusals)
    assert SECRET.encode() not in answer


def test_a_refused_long_name_is_recorded_cut_to_its_last_labels_and_ipv6_in_brackets(
    upstream: Upstream,
) -> None:
    long_name = ".".join(c * 63 for c in "abc") + ".Evil.Example"
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        for target in (f"{long_name}:443", "[::1]:8443", "Short.Example:443"):
            assert _status(_ask(proxy, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())) == 403
    assert [where for _, _, where in proxy.refusals] == [
        "*.evil.example:443",
        "[::1]:8443",
        "short.example:443",
    ]
    assert all(len(where or "") <= MAX_DESTINATION_CHARS for _, _, where in proxy.refusals)


def test_an_egress_report_from_the_wire_drops_a_destination_outside_the_bounds() -> None:
    wire = {
        "tunnels": 2,
        "refusals": [
            [403, "destination not allowed by the sandbox policy", "evil.example:443"],
            [403, "destination not allowed by the sandbox policy", "x" * 200 + ":443"],
            [403, "destination not allowed by the sandbox policy", "/path?token=1:443"],
            [400, "malformed request line", None],
        ],
    }
    report = EgressReport.from_dict(wire)
    assert report.tunnels == 2
    assert [r.destination for r in report.refusals] == ["evil.example:443", None, None, None]
    assert EgressReport.from_dict(report.to_dict()) == report


def test_host_header_naming_another_origin_than_the_target_is_refused(
    upstream: Upstream, other: Upstream
) -> None:
    head = (
        f"GET http://127.0.0.1:{upstream.port}/ HTTP/1.1\r\nHost: 127.0.0.2:{other.port}\r\n\r\n"
    ).encode()
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        answer = _ask(proxy, head)
    assert _status(answer) == 400
    assert upstream.received == []
    assert other.received == []
    # Ambiguous: neither origin is recorded as its destination.
    assert proxy.refusals == [(400, "Host header disagrees with the request target", None)]


def test_oversize_head_and_too_many_headers_are_refused_with_431(upstream: Upstream) -> None:
    target = f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\n"
    big = (target + "X-Pad: " + "a" * 20000 + "\r\n\r\n").encode()
    many = (target + "".join(f"X-{i}: v\r\n" for i in range(100)) + "\r\n").encode()
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        assert _status(_ask(proxy, big)) == 431
        assert _status(_ask(proxy, many)) == 431
    assert upstream.received == []


def test_a_head_that_never_ends_is_refused_with_408_at_the_head_timeout(
    upstream: Upstream,
) -> None:
    with _proxy([("127.0.0.1", upstream.port)], head_timeout=0.3) as proxy:
        answer = _ask(proxy, f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\n".encode())
    assert _status(answer) == 408
    assert upstream.received == []


def test_connections_beyond_the_cap_are_refused_with_503(upstream: Upstream) -> None:
    assert MAX_CONNECTIONS >= 1
    proxy = _proxy([("127.0.0.1", upstream.port)], max_connections=1)
    try:
        with socket.create_connection(proxy.address, timeout=10) as holder:
            holder.sendall(b"CONNECT ")  # holds the one slot, head unfinished
            with socket.create_connection(proxy.address, timeout=10) as second:
                assert second.recv(100).startswith(b"HTTP/1.1 503 ")  # answered on accept
    finally:
        proxy.stop()
    assert proxy.refusals[0] == (503, "too many connections", None)


def test_an_allowed_destination_that_refuses_the_dial_is_answered_with_502() -> None:
    closed = _listen()
    port = int(closed.getsockname()[1])
    closed.close()  # nothing listens there now: the dial is refused
    with _proxy([("127.0.0.1", port)]) as proxy:
        answer = _ask(proxy, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    assert _status(answer) == 502
    assert proxy.refusals == [(502, "the allowed destination did not answer", f"127.0.0.1:{port}")]


def test_a_tunnel_quiet_both_ways_is_closed_at_the_idle_timeout() -> None:
    silent = _listen()  # accepts in the kernel's backlog, never answers, never closes
    port = int(silent.getsockname()[1])
    try:
        with _proxy([("127.0.0.1", port)], idle_timeout=0.3) as proxy:
            answer = _ask(proxy, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        # _ask reads until EOF (or fails at its own 10 s timeout): the proxy ended the tunnel.
        assert answer == b"HTTP/1.1 200 Connection established\r\n\r\n"
    finally:
        silent.close()


def test_stop_closes_live_tunnels(upstream: Upstream) -> None:
    hold = Upstream(_listen(), reply=b"")
    stop_serving = threading.Event()

    def never_answer() -> None:
        conn, _ = hold.sock.accept()
        with conn:
            stop_serving.wait(10)

    threading.Thread(target=never_answer, daemon=True).start()
    proxy = _proxy([("127.0.0.1", hold.port)])
    with socket.create_connection(proxy.address, timeout=10) as client:
        client.sendall(f"CONNECT 127.0.0.1:{hold.port} HTTP/1.1\r\n\r\n".encode())
        assert client.recv(100).startswith(b"HTTP/1.1 200")
        proxy.stop()
        assert client.recv(100) == b""  # the tunnel is gone with the job
    stop_serving.set()
    hold.sock.close()


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: forge.example\r\n\r\n", 400),  # origin-form: not a proxy ask
        (b"GET https://forge.example/ HTTP/1.1\r\n\r\n", 400),  # TLS goes through CONNECT
        (b"GET http://u:p@forge.example/ HTTP/1.1\r\n\r\n", 400),  # userinfo
        (b"GET http://forge.example/#f HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT forge.example HTTP/1.1\r\n\r\n", 400),  # CONNECT needs a port
        (b"CONNECT forge.example:0443x HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT forge.example:70000 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT forge.example.:443 HTTP/1.1\r\n\r\n", 400),  # trailing dot: another name
        (b"CONNECT forge%2eexample:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT [::1%lo]:443 HTTP/1.1\r\n\r\n", 400),
        # not an IPv6 address, only its characters: 160 bits of a token fit in such a "host"
        (b"CONNECT [0123456789abcdef:0123456789abcdef:01234567]:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT [1:2:3:4:5:6:7:8:9]:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT [:]:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT  forge.example:443 HTTP/1.1\r\n\r\n", 400),  # double space
        (b"CONNECT forge.example:443 HTTP/2.0\r\n\r\n", 400),
        (b"CONNECT forge.example:443 HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400),  # bare LF
        (b"CONNECT forge.example:443 HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400),
        (b"CONNECT forge.example:443 HTTP/1.1\r\nBad Name: a\r\n\r\n", 400),
        (b"CONNECT forge.example:443 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (
            b"POST http://forge.example/ HTTP/1.1\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
    ],
)
def test_parse_head_refuses_every_other_shape(head: bytes, status: int) -> None:
    with pytest.raises(Refused) as caught:
        parse_head(head)
    assert caught.value.status == status


def test_parse_head_accepts_git_shapes_including_bracketed_ipv6() -> None:
    assert parse_head(b"CONNECT Forge.Example:443 HTTP/1.1\r\n\r\n").host == "forge.example"
    request = parse_head(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n")
    assert (request.host, request.port) == ("::1", 8443)
    plain = parse_head(b"GET http://forge.example/x HTTP/1.1\r\nHost: FORGE.example:80\r\n\r\n")
    assert (plain.host, plain.port) == ("forge.example", 80)
    assert plain.forward.startswith(b"GET /x HTTP/1.1\r\n")


def test_proxy_serves_a_listener_numbered_above_fd_setsize(upstream: Upstream) -> None:
    """A long-lived spawning process (the job server, a CLI review) may hold fds past 1024,
    which select() cannot wait on; the proxy must still serve such a listener."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1600:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < 1600: no fd above FD_SETSIZE here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1600), hard))
    try:
        listener = _listen()
        high = fcntl.fcntl(listener.fileno(), fcntl.F_DUPFD_CLOEXEC, 1500)
        listener.close()
        allowed = check_pairs([("127.0.0.1", upstream.port)])
        with EgressProxy(socket.socket(fileno=high), allowed) as proxy:
            head = f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\n\r\n".encode()
            answer = _ask(proxy, head, then=b"GET / HTTP/1.1\r\n\r\n")
        assert high >= 1500
        assert answer.startswith(b"HTTP/1.1 200 Connection established")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_refused_name_is_never_looked_up_and_the_allowed_one_only_by_the_dial(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: name a host built from the token (``<token>.attacker.example``), so that the
    host's resolver carries it out in a DNS query, or spell the forge's address another way
    (decimal, octal, short, hex, IPv4-mapped, trailing dot, userinfo) to pass a check made on
    addresses. Control: names are compared before any lookup, so nothing refused is resolved;
    the allowed name is resolved once, by the dial, so no second lookup exists for a rebinding
    of the forge's name to answer differently. The resolver is the test's: no query leaves."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolver(host: object, port: object, *args: object, **kwargs: object) -> object:
        if threading.current_thread() is threading.main_thread():
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]  # the client's own
        lookups.append(str(host))
        if host == "forge.test":
            return real("127.0.0.1", port, *args, **kwargs)  # type: ignore[arg-type]
        raise socket.gaierror(socket.EAI_NONAME, "the test's resolver knows only forge.test")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = upstream.port
    other_port = port + 1 if port < 65535 else 1
    targets = [
        f"{SECRET}.attacker.example:{port}",
        f"2130706433:{port}",
        f"0177.0.0.1:{port}",
        f"127.1:{port}",
        f"0x7f.0.0.1:{port}",
        f"[::ffff:127.0.0.1]:{port}",
        f"127.0.0.1:{port}",
        f"forge.test.:{port}",
        f"bot@forge.test:{port}",
        f"forge.test:{other_port}",
    ]
    with _proxy([("forge.test", port)]) as proxy:
        for target in targets:
            answer = _ask(proxy, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
            assert _status(answer) in (400, 403), target
        plain = f"GET http://{SECRET}.attacker.example:{port}/ HTTP/1.1\r\n\r\n".encode()
        assert _status(_ask(proxy, plain)) == 403
        assert lookups == []
        head = f"CONNECT FORGE.test:{port} HTTP/1.1\r\n\r\n".encode()
        answer = _ask(proxy, head, then=b"GET / HTTP/1.1\r\n\r\n")
    assert _status(answer) == 200
    assert upstream.received == [b"GET / HTTP/1.1\r\n\r\n"]
    assert lookups == ["forge.test"]


def test_a_request_pipelined_behind_the_first_reaches_only_the_first_requests_origin(
    upstream: Upstream, other: Upstream
) -> None:
    """Attack: smuggle a second request, for another origin, behind the first on the same
    connection: behind an allowed request, and behind a refused one (CONNECT and absolute
    form). Control: a connection gets one upstream, chosen by its first request; the bytes
    after it go there unparsed, or are dropped with the refusal."""
    allowed = f"GET http://127.0.0.1:{upstream.port}/ HTTP/1.1\r\n\r\n".encode()
    elsewhere = (
        f"GET http://127.0.0.2:{other.port}/leak HTTP/1.1\r\nAuthorization: token {SECRET}\r\n\r\n"
    ).encode()
    tunnel = f"CONNECT 127.0.0.2:{other.port} HTTP/1.1\r\n\r\n".encode()
    with _proxy([("127.0.0.1", upstream.port)]) as proxy:
        assert _status(_ask(proxy, allowed + elsewhere)) == 200
        assert _status(_ask(proxy, allowed + tunnel)) == 200
        assert _status(_ask(proxy, elsewhere + allowed)) == 403
        assert _status(_ask(proxy, tunnel + allowed)) == 403
    assert other.received == []
    assert [seen.split(b"\r\n", 1)[0] for seen in upstream.received] == [b"GET / HTTP/1.1"] * 2
    assert proxy.tunnels == 2


def test_a_head_trickled_a_byte_at_a_time_is_cut_at_the_head_deadline(upstream: Upstream) -> None:
    """Attack: slowloris that keeps every read short of a per-read timeout by sending one byte
    at a time, to hold a connection slot (and a host thread) for good. Control: the whole head
    has one deadline, so the proxy answers 408 long before the trickle ends."""
    trickle = 400  # one byte per 50 ms: 20 s, 40 times the head timeout below
    sent, answer = 0, b""
    with (
        _proxy([("127.0.0.1", upstream.port)], head_timeout=0.5) as proxy,
        socket.create_connection(proxy.address, timeout=10) as sock,
    ):
        sock.sendall(f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\nX-Pad: ".encode())
        while sent < trickle and not answer:
            try:
                sock.sendall(b"a")
            except OSError:
                break  # the proxy closed: its answer is read below
            sent += 1
            if select.select([sock], [], [], 0.05)[0]:
                answer = sock.recv(100)
        if not answer:
            answer = sock.recv(100)
    assert _status(answer) == 408
    assert sent < trickle
    assert upstream.received == []


def test_a_proxy_started_twice_has_one_acceptor_and_stop_leaves_no_thread(
    upstream: Upstream,
) -> None:
    """``with EgressProxy(...).start()`` starts it twice. Two acceptors polling one listener
    both wake for a connection and the loser blocks in ``accept``, out of reach of ``stop``'s
    wake-up: ``stop`` waited out its join timeout and left that thread blocked for good.
    Control: ``start`` is idempotent, and ``stop`` ends every thread of the proxy."""
    before = set(threading.enumerate())
    proxy = EgressProxy(_listen(), check_pairs([("127.0.0.1", upstream.port)])).start()
    with proxy:
        assert [t.name for t in set(threading.enumerate()) - before] == ["egress-proxy"]
        for _ in range(3):
            head = f"CONNECT 127.0.0.1:{upstream.port} HTTP/1.1\r\n\r\n".encode()
            assert _status(_ask(proxy, head, then=b"GET / HTTP/1.1\r\n\r\n")) == 200
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []

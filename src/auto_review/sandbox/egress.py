"""Clone egress: a host-side HTTP proxy that lets a job reach exactly its allowed host:port pairs.

    caller, host network namespace             job, its own empty network namespace
      EgressProxy --accept() on the fd-- listener 127.0.0.1:EGRESS_PROXY_PORT <-- git (http_proxy)
        `-- dials host:port from the host namespace, only when (host, port) is allowed

The outer child makes the listener right after it unshared the network namespace
(``open_listener``) and hands its fd to the caller over a socketpair (SCM_RIGHTS): a socket stays
in the namespace it was made in, but its fd works in any process. So no relay process runs inside
the sandbox, and the job has no route anywhere but this listener.

Invariants once ``EgressProxy.start`` returns: each client connection gets exactly one upstream,
chosen from its first request (``CONNECT host:port``, or an absolute-form ``http://`` request,
rewritten to origin-form with ``Connection: close``) and checked against the allowlist (host
compared case-insensitively, port exactly) before any name resolution or dial; anything else is
answered with an HTTP error and closed. Head size, header count, the wait for the head, the dial,
idle time and concurrent connections are bounded. Nothing a client sent is logged or kept (the
clone job holds the forge token): a refusal is recorded as a status, a fixed reason and, once a
request named one, its destination as a normalised ``host:port`` of at most
``MAX_DESTINATION_CHARS``; never a path, header or body.

Out of scope: what is said inside an allowed tunnel (TLS SNI, Host, paths on the forge); the
forge's redirects (following one is a new request, to another host refused here).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Iterable
from typing import Final

from auto_review.sandbox._http_head import (
    MAX_HEAD_BYTES,
    Refused,
    Request,
    normalise_host,
    parse_head,
    response,
)
from auto_review.sandbox.errors import SandboxPolicyInvalid

__all__ = [
    "EGRESS_PROXY_PORT",
    "HEAD_TIMEOUT_SECONDS",
    "MAX_CONNECTIONS",
    "MAX_DESTINATION_CHARS",
    "MAX_RECORDED",
    "EgressProxy",
    "check_pairs",
    "normalise_host",
    "open_listener",
    "parse_egress",
    "proxy_env",
    "receive_listener",
]

# Inside the job's own network namespace, where nothing else listens (squid's usual port).
EGRESS_PROXY_PORT: Final = 3128
HEAD_TIMEOUT_SECONDS: Final = 10.0  # the whole head must arrive in this time (closes: slowloris)
DIAL_TIMEOUT_SECONDS: Final = 15.0
IDLE_TIMEOUT_SECONDS: Final = 300.0  # no byte either way; a forge building a big pack is quiet
MAX_CONNECTIONS: Final = 8  # git uses one or two at a time
_LISTEN_BACKLOG: Final = 16
_CHUNK: Final = 64 * 1024
MAX_RECORDED: Final = 100  # refusals kept per job
# A refused destination is kept as host:port, the host cut to its last labels within this bound
# (it is chosen by the job, e.g. from a submodule URL, so it is bounded like any hostile input).
_MAX_DESTINATION_HOST: Final = 64
MAX_DESTINATION_CHARS: Final = _MAX_DESTINATION_HOST + len("*.") + len("[]:65535")
_LINGER_SECONDS: Final = 2.0
_LINGER_BYTES: Final = 256 * 1024


def proxy_env() -> dict[str, str]:
    """The variables that point git (libcurl) at the proxy. Debian 12's git 2.39 reads
    ``http_proxy`` (lowercase only) for http and ``HTTPS_PROXY``/``https_proxy`` for https."""
    url = f"http://127.0.0.1:{EGRESS_PROXY_PORT}"
    return {"http_proxy": url, "https_proxy": url, "HTTPS_PROXY": url}


def parse_egress(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a (host, port) pair, validated."""
    host, sep, port = text.rpartition(":")
    name = normalise_host(host) if sep and port.isdigit() else None
    if name is None or (":" in name and not host.startswith("[")):
        raise SandboxPolicyInvalid(f"--egress {text!r}: give HOST:PORT, e.g. forge.example:443")
    return check_pairs([(name, int(port))])[0]


def check_pairs(pairs: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Egress pairs normalised (host lower-case) and de-duplicated; refuses a malformed one."""
    out: list[tuple[str, int]] = []
    for host, port in pairs:
        name = normalise_host(str(host))
        if name is None:
            raise SandboxPolicyInvalid(
                f"--egress {host!r}: give a DNS name or an IP address, no user, path or port"
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise SandboxPolicyInvalid(f"--egress {host}:{port}: port out of range 1-65535")
        out.append((name, port))
    return tuple(dict.fromkeys(out))


def open_listener(channel_fd: int) -> None:
    """In the outer child, right after it entered the new network namespace: listen on
    127.0.0.1:EGRESS_PROXY_PORT there and send the fd over ``channel_fd``; close both."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        listener.bind(("127.0.0.1", EGRESS_PROXY_PORT))
        listener.listen(_LISTEN_BACKLOG)
        with socket.socket(fileno=channel_fd) as channel:
            socket.send_fds(channel, [b"L"], [listener.fileno()])
    finally:
        listener.close()


def receive_listener(channel: socket.socket, timeout: float) -> socket.socket | None:
    """The listener the outer child sent on ``channel`` (None if it ended without sending)."""
    channel.settimeout(timeout)
    _msg, fds, _flags, _addr = socket.recv_fds(channel, 16, 4, socket.MSG_CMSG_CLOEXEC)
    for extra in fds[1:]:
        os.close(extra)
    if not fds:
        return None
    listener = socket.socket(fileno=fds[0])
    if not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        listener.close()
        return None
    return listener


def _destination(host: str, port: int) -> str:
    """``host:port`` of a checked request (host already normalised: ``[a-z0-9.-]`` or an IPv6
    literal), a long name cut to its last labels as ``*.rest``, so the owner stays visible."""
    if ":" in host:
        return f"[{host}]:{port}"
    labels = host.split(".")
    while len(".".join(labels)) > _MAX_DESTINATION_HOST:
        labels = labels[1:]
    name = ".".join(labels)
    return f"{name}:{port}" if name == host else f"*.{name}:{port}"


def _linger(client: socket.socket) -> None:
    """Half-close, then read and drop what the client still sends (bounded in time and size):
    closing with unread data would answer RST, which can destroy our answer in flight."""
    client.shutdown(socket.SHUT_WR)
    deadline, dropped = time.monotonic() + _LINGER_SECONDS, 0
    while dropped < _LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
        client.settimeout(left)
        chunk = client.recv(_CHUNK)
        if not chunk:
            return
        dropped += len(chunk)


class EgressProxy:
    """Serve one job's listener until ``stop``; allow only the given (host, port) pairs."""

    def __init__(
        self,
        listener: socket.socket,
        allowed: Iterable[tuple[str, int]],
        *,
        head_timeout: float = HEAD_TIMEOUT_SECONDS,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._listener = listener
        self._allowed = frozenset(
            (h, p) for h, p in ((normalise_host(h), p) for h, p in allowed) if h
        )
        self._head_timeout = head_timeout
        self._idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        # (status, fixed reason, bounded host:port or None): never a path, header or body
        self.refusals: list[tuple[int, str, str | None]] = []
        self.tunnels = 0

    @property
    def address(self) -> tuple[str, int]:
        """Where the listener listens (in the namespace it was made in)."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> EgressProxy:
        """Accept connections on a background thread (idempotent: ``with proxy.start()``)."""
        with self._lock:
            if self._started:
                # closes: a second acceptor, which loses the race for a connection inside
                # a blocking accept() that stop's wake-up cannot reach
                return self
            self._started = True
            thread = threading.Thread(target=self._accept_loop, name="egress-proxy", daemon=True)
            self._threads.append(thread)
        thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; wait briefly for the threads (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        os.write(self._wake_w, b"x")
        with self._lock:
            for sock in self._live:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> EgressProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _refuse(self, status: int, reason: str, destination: str | None = None) -> None:
        with self._lock:
            if len(self.refusals) < MAX_RECORDED:
                self.refusals.append((status, reason, destination))

    def _accept_loop(self) -> None:
        # poll, not select: the spawning process (a CLI review, the job server) may hold fds
        # numbered above FD_SETSIZE (1024), which select() refuses.
        waiter = select.poll()
        waiter.register(self._listener.fileno(), select.POLLIN)
        waiter.register(self._wake_r, select.POLLIN)
        while not self._stopping.is_set():
            ready = {fd for fd, _events in waiter.poll()}
            if self._wake_r in ready:
                return
            try:
                client, _peer = self._listener.accept()
            except OSError:
                continue
            if not self._slots.acquire(blocking=False):
                # closes: a job exhausting the host's threads and sockets through the proxy
                self._refuse(503, "too many connections")
                with contextlib.suppress(OSError):
                    client.setblocking(False)  # never block the acceptor on a client
                    client.send(response(503, "too many connections"))
                    client.shutdown(socket.SHUT_WR)
                    client.recv(MAX_HEAD_BYTES)  # what already arrived, so close sends FIN
                client.close()
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                if self._stopping.is_set():
                    client.close()
                    self._slots.release()
                    return
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
                self._live.add(client)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        request: Request | None = None
        try:
            head, rest = self._read_head(client)
            request = parse_head(head)
            if (request.host, request.port) not in self._allowed:
                raise Refused(403, "destination not allowed by the sandbox policy")
            try:
                # Resolved and dialled here, in the host's namespace, only after the check.
                upstream = socket.create_connection(
                    (request.host, request.port), timeout=DIAL_TIMEOUT_SECONDS
                )
            except OSError:
                raise Refused(502, "the allowed destination did not answer") from None
            with self._lock:
                if self._stopping.is_set():
                    return
                self._live.add(upstream)
                self.tunnels += 1
            client.settimeout(self._idle_timeout)
            upstream.settimeout(self._idle_timeout)
            if request.method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(request.forward)
            if rest:
                upstream.sendall(rest)
            self._relay(client, upstream)
        except Refused as refused:
            where = None if request is None else _destination(request.host, request.port)
            self._refuse(refused.status, refused.reason, where)
            with contextlib.suppress(OSError):
                client.sendall(response(refused.status, refused.reason))
                _linger(client)
        except OSError:
            pass  # a peer went away or timed out mid-stream: nothing to answer
        except Exception:  # a bug here must end this connection, not the job or the caller
            self._refuse(500, "internal error")
        finally:
            with self._lock:
                self._live.discard(client)
                if upstream is not None:
                    self._live.discard(upstream)
            client.close()
            if upstream is not None:
                upstream.close()
            self._slots.release()

    def _read_head(self, client: socket.socket) -> tuple[bytes, bytes]:
        deadline = time.monotonic() + self._head_timeout
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                if end + 4 > MAX_HEAD_BYTES:
                    raise Refused(431, "request head too large")
                return buf[: end + 4], buf[end + 4 :]
            if len(buf) >= MAX_HEAD_BYTES:
                raise Refused(431, "request head too large")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Refused(408, "request head not received in time")
            client.settimeout(left)
            try:
                chunk = client.recv(MAX_HEAD_BYTES + 4 - len(buf))
            except TimeoutError:
                raise Refused(408, "request head not received in time") from None
            if not chunk:
                raise OSError("client closed before the head ended")
            buf += chunk

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        by_fd = {client.fileno(): (client, upstream), upstream.fileno(): (upstream, client)}
        waiter = select.poll()
        for fd in by_fd:
            waiter.register(fd, select.POLLIN)
        reading = len(by_fd)
        while reading and not self._stopping.is_set():
            ready = waiter.poll(self._idle_timeout * 1000)
            if not ready:
                return  # idle for too long
            for fd, _events in ready:
                sock, other = by_fd[fd]
                data = sock.recv(_CHUNK)
                if data:
                    other.sendall(data)
                    continue
                waiter.unregister(fd)
                reading -= 1
                with contextlib.suppress(OSError):
                    other.shutdown(socket.SHUT_WR)

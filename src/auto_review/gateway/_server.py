"""The uvicorn server the gateway runs on: connection limits, read timeouts, signal handling.

- ``limit_concurrency`` answers 503 past ``AR_MAX_CONNECTIONS`` open connections or tasks.
- ``h11_max_incomplete_event_size`` caps an *unfinished* request head at 16 KiB; a head that
  arrives whole in one socket read (up to the transport's read size, measured: a 60 KB head
  was taken, a 200 KB one refused with 400) is parsed as it is. Memory per connection stays
  bounded by that read size.
- uvicorn has no deadline for receiving request headers (its keep-alive timer is reset by every
  byte), so a slow-loris client could hold a slot forever; ``_HeaderDeadlineProtocol`` closes a
  connection whose headers are not complete ``AR_HEADER_TIMEOUT_SECS`` after it started
  waiting for them. The body deadline is enforced by the routes (``_body.read_body``).
  The same deadline covers the rest of a body nobody reads any more (the answer was sent, e.g.
  a 429, 404 or 408): each byte of it used to cancel uvicorn's keep-alive timer for good.
- SIGTERM/SIGINT start a graceful stop (no new connections, in-flight requests finish, then
  the app's lifespan gives running jobs their grace period). Unlike stock uvicorn, the signal
  is not re-raised afterwards, so the process exits 0 after a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import h11
from starlette.types import ASGIApp
from uvicorn import Config, Server
from uvicorn.protocols.http.h11_impl import H11Protocol

from auto_review.settings import Settings

__all__ = ["MAX_HEADER_BYTES", "GatewayServer", "bound_socket", "build_server"]

MAX_HEADER_BYTES = 16 * 1024
_HTTP_DRAIN_SECS = 10


class _HeaderDeadlineProtocol(H11Protocol):
    """H11 protocol that closes connections which do not finish their headers in time."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._client_holds_connection():
            self._arm_header_timer()  # waiting for headers, or for a body already answered
        else:
            self._disarm_header_timer()

    def _client_holds_connection(self) -> bool:
        return self.conn.their_state is h11.IDLE or self.conn.our_state is h11.DONE

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._client_holds_connection() and not self.transport.is_closing():
            self.transport.close()


class GatewayServer(Server):
    """uvicorn ``Server`` that handles SIGTERM/SIGINT without re-raising them afterwards."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def build_server(
    settings: Settings, app: ASGIApp, *, host: str | None = None, port: int | None = None
) -> GatewayServer:
    """A configured server for ``app`` on the settings' bind address (or ``host``/``port``)."""
    protocol = type(
        "GatewayH11Protocol",
        (_HeaderDeadlineProtocol,),
        {"header_timeout": settings.header_timeout_secs},
    )
    options: dict[str, Any] = {
        "host": host if host is not None else settings.bind_host,
        "port": port if port is not None else settings.bind_port,
        "http": protocol,
        "lifespan": "on",
        "loop": "asyncio",
        "ws": "none",
        "access_log": False,
        "log_config": None,
        "server_header": False,
        "proxy_headers": False,  # the client address is the peer; headers could be forged
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": _HTTP_DRAIN_SECS,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
    return GatewayServer(Config(app, **options))


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one), for tests and the launcher."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock

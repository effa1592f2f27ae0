"""Run an ASGI app on uvicorn in a background thread, bound to 127.0.0.1 on a free port.

The socket is bound before the thread starts, so the port is known at once and no other process
can take it between "find a free port" and "listen". ``stop()`` is idempotent and bounded.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ThreadedUvicorn"]

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class ThreadedUvicorn:
    """One uvicorn server in a daemon thread; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, app: ASGIApp) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # h11 + asyncio + no websockets: nothing optional gets imported inside the thread, where
        # a deprecation warning would turn into an unhandled thread exception under -W error.
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            loop="asyncio",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._stopped = False

    def start(self) -> None:
        """Start serving; returns once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if not self._thread.is_alive():
            self._sock.close()  # never started, or already gone
            return
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(_STOP_TIMEOUT_S)
        self._sock.close()

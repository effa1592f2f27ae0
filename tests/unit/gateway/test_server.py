"""The real HTTP server on loopback: slow clients, header deadline, connection cap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.unit.gateway.support import build, hook_headers, recorded

from auto_review.gateway._server import GatewayServer, bound_socket, build_server

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def _serving(tmp_path: Path, **env: str) -> AsyncIterator[tuple[int, GatewayServer]]:
    app, gw, _, _ = build(tmp_path, env=env)
    sock = bound_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = build_server(gw.settings, app, host="127.0.0.1", port=port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
    try:
        yield port, server
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _raw(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def test_server_answers_408_to_a_client_that_trickles_its_body(tmp_path: Path) -> None:
    async with _serving(tmp_path, AR_BODY_TIMEOUT_SECS="0.3") as (port, _):
        reader, writer = await _raw(
            port,
            b'POST /webhooks/forgejo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":',
        )
        async with asyncio.timeout(10):
            status_line = await reader.readline()
        writer.close()
        # Positive control: a complete signed delivery on the same server is accepted.
        body = recorded("HookPullRequest.json")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ok = await client.post(
                "/webhooks/forgejo", content=body, headers=hook_headers("pull_request", body)
            )
    assert status_line.startswith(b"HTTP/1.1 408")
    assert ok.status_code == 202


async def test_server_closes_a_connection_whose_headers_never_finish(tmp_path: Path) -> None:
    async with _serving(tmp_path, AR_HEADER_TIMEOUT_SECS="0.3") as (port, _):
        reader, writer = await _raw(port, b"POST /webhooks/forgejo HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # keep trickling header bytes: each one used to reset uvicorn's timer
            await asyncio.sleep(0.1)
            writer.write(b"X-A: b\r\n")
            await writer.drain()
        async with asyncio.timeout(10):
            rest = await reader.read()
        writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/healthz")
    assert rest == b""  # closed without an answer
    assert health.status_code == 200  # positive control


async def test_server_answers_503_past_the_connection_cap(tmp_path: Path) -> None:
    async with _serving(tmp_path, AR_MAX_CONNECTIONS="2", AR_HEADER_TIMEOUT_SECS="30") as (
        port,
        _,
    ):
        idle = [await _raw(port, b"") for _ in range(2)]
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            refused = await client.get("/healthz")
        for _, writer in idle:
            writer.close()
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            fine = await client.get("/healthz")
    assert refused.status_code == 503
    assert fine.status_code == 200


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",  # never read
        b"POST /webhooks/forgejo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",  # 408
    ],
    ids=["unread-body", "after-408"],
)
async def test_server_closes_a_connection_trickling_a_body_after_its_answer(
    tmp_path: Path, head: bytes
) -> None:
    env = {"AR_HEADER_TIMEOUT_SECS": "0.3", "AR_BODY_TIMEOUT_SECS": "0.3"}
    async with _serving(tmp_path, **env) as (port, _):
        reader, writer = await _raw(port, head)
        async with asyncio.timeout(10):
            answer = await reader.readuntil(b"\r\n\r\n")
        closed = False
        for _ in range(60):  # one byte every 0.1 s: each used to cancel the keep-alive timer
            try:
                writer.write(b"a")
                await writer.drain()
                closed = await asyncio.wait_for(reader.read(1024), 0.1) == b""
            except TimeoutError:
                continue
            except ConnectionError:
                closed = True
            if closed:
                break
        writer.close()
    assert answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 408"))
    assert closed

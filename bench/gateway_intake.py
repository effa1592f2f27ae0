"""Webhook intake benchmark: signed deliveries vs a no-op route on the same server stack.

Usage: ``.venv/bin/python bench/gateway_intake.py [--requests N] [--concurrency C]``

Starts two child processes on loopback, one after the other, with the same uvicorn setup
(``auto_review.gateway._server.build_server``): the gateway answering signed ``issue_comment``
deliveries that mention the bot (rate limit, body read, HMAC, dedup, JSON decode, chat job
insert, delivery record: the whole accepted path), and a baseline answering ``POST /noop``.
Each gets a warm-up, then N requests at fixed concurrency over keep-alive connections.
Prints throughput, p50/p99 latency,
the gateway/baseline throughput ratio (target >= 0.5) and the gateway's idle and loaded RSS.
Request counts are bounded and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from auto_review.gateway import GatewayDeps, create_app
from auto_review.gateway._server import build_server
from auto_review.logs import configure_logging
from auto_review.settings import load_settings
from auto_review.store import Store

SECRET = "b" * 40
WARMUP = 200


def _env(state: str, port: int) -> dict[str, str]:
    return {
        "WEBHOOK_SECRET": SECRET,
        "FORGEJO_BASE_URL": "http://127.0.0.1:9",
        "AR_FORGEJO_TOKEN": "t" * 40,
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "AR_STATE_DIR": state,
        "AR_GATEWAY_BIND": f"127.0.0.1:{port}",
        "AR_POLL_INTERVAL_SECS": "0",
        "AR_MAX_CONNECTIONS": "1024",
        # The benchmark measures the accepted path, so the buckets must not refuse it.
        "AR_WEBHOOK_RATE_PER_SEC": "1000000",
        "AR_WEBHOOK_BURST": "1000000",
        "AR_WEBHOOK_CLIENT_RATE_PER_SEC": "1000000",
        "AR_WEBHOOK_CLIENT_BURST": "1000000",
    }


class _NoForge:
    """The intake path under test calls no forge method; anything else is a benchmark bug."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"benchmark gateway called the forge ({name})")


def _serve_child(kind: str, port: int, state: str) -> None:
    settings = load_settings(_env(state, port)).settings
    configure_logging(level="warning", fmt="json")
    if kind == "gateway":
        store = Store.open(Path(state) / "bench.sqlite3")
        app = create_app(settings, GatewayDeps(store=store, host=_NoForge(), runner=None))  # type: ignore[arg-type]
    else:

        async def noop(request: Request) -> Response:
            await request.body()
            return PlainTextResponse("accepted", status_code=202)

        app = Starlette(routes=[Route("/noop", noop, methods=["POST"])])
    asyncio.run(build_server(settings, app).serve())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _delivery(cid: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "action": "created",
            "issue": {"number": 1, "pull_request": {"merged": False}},
            "comment": {"id": cid, "body": f"@auto-review ping {cid}", "user": {"login": "bob"}},
            "repository": {"name": "demo", "full_name": "alice/demo"},
            "sender": {"login": "bob"},
            "is_pull": True,
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Forgejo-Event": "issue_comment",
        "X-Forgejo-Delivery": f"bench-{cid}",
        "X-Forgejo-Signature": signature,
    }
    return body, headers


async def _load(port: int, path: str, first: int, count: int, concurrency: int) -> list[float]:
    """Send ``count`` deliveries over ``concurrency`` keep-alive connections; return latencies.

    A minimal HTTP/1.1 client on asyncio streams: httpx costs more CPU per request than the
    server under test, which would make the client the bottleneck on a small machine.
    """
    wire = []
    for cid in range(first, first + count):
        body, headers = _delivery(cid)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        wire.append(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"{head}\r\n".encode()
            + body
        )
    latencies: list[float] = []
    next_index = 0

    async def connection() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < len(wire):
                request = wire[next_index]
                next_index += 1
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != 202:
                    raise RuntimeError(f"unexpected answer {status}")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return status


def _run(kind: str, path: str, requests: int, concurrency: int) -> dict[str, float]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as state:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, str(port), state],
            env={**os.environ, "AR_LOG_LEVEL": "warning"},
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{url}/healthz" if kind == "gateway" else url, timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            idle = _rss_kib(child.pid)
            asyncio.run(_load(port, path, 1_000_000, WARMUP, concurrency))
            started = time.perf_counter()
            latencies = asyncio.run(_load(port, path, 1, requests, concurrency))
            elapsed = time.perf_counter() - started
            loaded = _rss_kib(child.pid)
        finally:
            child.terminate()
            child.wait(timeout=60)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": requests / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "idle_rss_mib": idle / 1024,
        "loaded_rss_mib": loaded / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--serve", nargs=3, metavar=("KIND", "PORT", "STATE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        _serve_child(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    if not 100 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 256:
        parser.error("requests must be 100..100000 and concurrency 1..256")
    if not 1 <= args.rounds <= 10:
        parser.error("rounds must be 1..10")
    # Alternating rounds: each ratio compares two runs made back to back, so a machine whose
    # load drifts (other work on the box) affects both sides of a ratio alike.
    rounds = [
        (
            _run("noop", "/noop", args.requests, args.concurrency),
            _run("gateway", "/webhooks/forgejo", args.requests, args.concurrency),
        )
        for _ in range(args.rounds)
    ]
    ratios = sorted(g["rps"] / b["rps"] for b, g in rounds)
    baseline = max((b for b, _ in rounds), key=lambda r: r["rps"])
    gateway = max((g for _, g in rounds), key=lambda r: r["rps"])
    print(
        f"requests={args.requests} concurrency={args.concurrency} rounds={args.rounds} "
        "(loopback; best round of each shown)"
    )
    for name, r in (("baseline no-op", baseline), ("signed webhook", gateway)):
        print(
            f"{name:>15}: {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:6.2f} ms"
        )
    ratio = statistics.median(ratios)
    print(
        f"throughput ratio (webhook / no-op), median of rounds: {ratio:.2f}  (target >= 0.50; "
        f"rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(f"p50 latency ratio (webhook / no-op): {gateway['p50_ms'] / baseline['p50_ms']:.2f}")
    print(
        f"gateway RSS: idle {gateway['idle_rss_mib']:.1f} MiB, "
        f"loaded {gateway['loaded_rss_mib']:.1f} MiB"
    )


if __name__ == "__main__":
    main()

"""The webhook and CI rate limits against clients that rotate their source address."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.unit.gateway.support import build

pytestmark = pytest.mark.anyio

_ENV = {"AR_WEBHOOK_CLIENT_BURST": "2", "AR_WEBHOOK_CLIENT_RATE_PER_SEC": "0.001"}


async def _post(app: object, address: str, path: str = "/webhooks/forgejo") -> int:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return (await client.post(path, content=b"x")).status_code


@pytest.mark.parametrize("path", ["/webhooks/forgejo", "/reviews/ci"])
async def test_one_ipv6_64_is_one_client_however_many_addresses_it_sends_from(
    tmp_path: Path, path: str
) -> None:
    app, _, _, _ = build(tmp_path, env=_ENV)
    # One host owns a whole /64: a new address per request used to get a fresh bucket each.
    rotated = [await _post(app, f"2001:db8:1:2::{n:x}", path) for n in range(1, 5)]
    other_64 = await _post(app, "2001:db8:1:3::1", path)
    ipv4 = [await _post(app, f"192.0.2.{n}", path) for n in range(1, 4)]
    assert rotated == [401, 401, 429, 429]
    assert other_64 == 401  # another /64 is another client
    assert ipv4 == [401, 401, 401]  # IPv4 addresses stay one client each

"""Operator endpoints: health, readiness (cached, bounded, quiet), version, info, metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.unit.gateway.support import CI_TOKEN, SECRET, build

from auto_review import __version__
from auto_review.gateway import IsolationReport, Readiness, bare_posture
from auto_review.jobs import SystemClock

pytestmark = pytest.mark.anyio

OPERATOR_TOKEN = "p" * 40
_SECRETS = (SECRET, CI_TOKEN, "t" * 40, "k" * 40, OPERATOR_TOKEN)


def _client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


async def test_healthz_and_version_answer_without_io(tmp_path: Path) -> None:
    app, _, host, _ = build(tmp_path)
    async with _client(app) as client:
        health = await client.get("/healthz")
        version = await client.get("/version")
    assert (health.status_code, health.text) == (200, "ok")
    assert version.json() == {"name": "auto-review", "version": __version__}
    assert host.calls == []


async def test_info_and_metrics_contain_no_secret_value(tmp_path: Path) -> None:
    app, _gw, _, _ = build(
        tmp_path,
        env={
            "LLM_API_KEY": "k" * 40,
            "LLM_CHEAP_MODEL": "small",
            "AR_OPERATOR_TOKEN": OPERATOR_TOKEN,
        },
        posture=lambda: IsolationReport("full", {"seccomp": "enforced", "landlock": "enforced"}),
    )
    auth = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with _client(app) as client:
        info = await client.get("/info", headers=auth)
        metrics = await client.get("/metrics", headers=auth)
    for secret in _SECRETS:
        assert secret not in info.text
        assert secret not in metrics.text
    doc = info.json()
    # The stable contract: these fields are never renamed or removed (adding is fine).
    assert set(doc) >= {
        "name",
        "version",
        "bot",
        "stores",
        "model",
        "review_mode",
        "ci_endpoint",
        "chat_handler",
        "review_handler",
        "poller",
        "queue",
        "isolation",
    }
    assert doc["version"] == __version__
    assert doc["bot"] == {"login": "auto-review", "mention": "auto-review"}
    assert doc["model"]["tiers"] == ["reasoning", "cheap"]
    assert doc["isolation"]["tier"] == "full"
    assert doc["queue"]["queued"] == 0
    assert doc["poller"]["enabled"] is False
    assert doc["ci_endpoint"] is True
    assert 'auto_review_isolation_control{control="seccomp",state="enforced"} 1.0' in metrics.text
    assert "auto_review_build_info{" in metrics.text
    assert "auto_review_queue_depth" in metrics.text


async def test_readyz_reports_checks_without_upstream_error_text(tmp_path: Path) -> None:
    async def forge() -> None:
        raise RuntimeError("token=" + "t" * 40 + " refused")

    async def model() -> None:
        return None

    app, _, _, _ = build(tmp_path, probes={"forge": forge, "model": model})
    async with _client(app) as client:
        r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "checks": {"forge": "unreachable", "model": "ok"}}
    assert "refused" not in r.text


async def test_readiness_concurrent_callers_share_one_bounded_probe() -> None:
    calls = 0
    release = asyncio.Event()

    async def hung() -> None:
        nonlocal calls
        calls += 1
        await release.wait()

    readiness = Readiness({"forge": hung}, clock=SystemClock(), ttl_secs=10, timeout_secs=0.2)
    results = await asyncio.gather(*(readiness.check() for _ in range(20)))
    assert calls == 1
    assert all(not r.ready for r in results)
    release.set()


async def test_readiness_result_is_cached_for_the_ttl() -> None:
    calls = 0

    async def ok() -> None:
        nonlocal calls
        calls += 1

    readiness = Readiness({"forge": ok}, clock=SystemClock(), ttl_secs=60)
    first = await readiness.check()
    second = await readiness.check()
    assert first.ready
    assert second.ready
    assert calls == 1
    uncached = Readiness({"forge": ok}, clock=SystemClock(), ttl_secs=0)
    await uncached.check()
    await uncached.check()
    assert calls == 3  # positive control: TTL 0 probes every time


async def test_info_gives_each_control_the_reason_of_the_sandbox_posture(tmp_path: Path) -> None:
    from auto_review.sandbox import Control, Posture

    no_cgroup = "controllers memory, pids are not delegated; run under systemd with Delegate=yes"
    posture = Posture(
        tier_requested="restricted",
        tier_effective="restricted",
        policy="gateway",
        controls=(
            Control("seccomp", "on", "Seccomp: 2 read back"),
            Control("cgroup_limits", "unavailable", no_cgroup),
        ),
    )
    report = IsolationReport.from_posture(posture)
    assert report.tier == "restricted"
    assert dict(report.controls) == {"seccomp": "on", "cgroup_limits": "unavailable"}
    app, gw, _, _ = build(tmp_path, posture=lambda: report)
    async with _client(app) as client:
        isolation = (await client.get("/info")).json()["isolation"]
    assert isolation["controls"] == {"seccomp": "on", "cgroup_limits": "unavailable"}
    assert isolation["reasons"] == {
        "seccomp": "Seccomp: 2 read back",
        "cgroup_limits": no_cgroup,
    }
    assert isolation["tier_requested"] == "restricted"
    # The metric keeps its two labels: a reason is free text, never a label value.
    [family] = [
        f for f in gw.metrics.registry.collect() if f.name == "auto_review_isolation_control"
    ]
    assert {s.labels["control"]: s.labels for s in family.samples}["cgroup_limits"] == {
        "control": "cgroup_limits",
        "state": "unavailable",
    }
    sample = gw.metrics.registry.get_sample_value(
        "auto_review_isolation_control", {"control": "cgroup_limits", "state": "unavailable"}
    )
    assert sample == 1


def test_bare_posture_gives_every_control_its_reason() -> None:
    isolation = bare_posture().as_json()
    controls, reasons = isolation["controls"], isolation["reasons"]
    assert isinstance(controls, dict)
    assert isinstance(reasons, dict)
    assert set(reasons) == set(controls)
    assert all("AR_ISOLATION=none" in why for why in reasons.values()), reasons


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz/"), ("GET", "/info/"), ("POST", "/webhooks/forgejo/")],
)
async def test_routes_do_not_redirect_to_the_callers_host(
    tmp_path: Path, method: str, path: str
) -> None:
    app, _, host, _ = build(tmp_path)
    async with _client(app) as client:
        answer = await client.request(method, path, headers={"Host": "evil.example"})
        control = await client.request(method, path.rstrip("/"), headers={"Host": "evil.example"})
    # A trailing slash used to get a 307 to http://<Host header><path>: a redirect anywhere.
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert "evil.example" not in answer.text
    assert control.status_code != 404  # positive control: the route itself exists
    assert host.calls == []

"""AR_OPERATOR_TOKEN: /info and /metrics behind a bearer token, the probes left open."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.unit.gateway.support import build, settings

from auto_review.gateway._bearer import bearer_matches
from auto_review.logs import configure_logging
from auto_review.ops import _status

pytestmark = pytest.mark.anyio

OPERATOR_TOKEN = "operator-" + "o" * 40
GUARDED = ("/info", "/metrics")


def _client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


def _bearer(token: str = OPERATOR_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        _bearer("operator-" + "x" * 40),
        _bearer(OPERATOR_TOKEN[:-1]),
        {"Authorization": OPERATOR_TOKEN},
        {"Authorization": f"Basic {OPERATOR_TOKEN}"},
    ],
    ids=["none", "wrong", "prefix", "no-scheme", "basic"],
)
async def test_operator_token_refuses_info_and_metrics_without_it(
    tmp_path: Path, path: str, headers: dict[str, str]
) -> None:
    app, _, _, _ = build(tmp_path, env={"AR_OPERATOR_TOKEN": OPERATOR_TOKEN})
    async with _client(app) as client:
        refused = await client.get(path, headers=headers)
        allowed = await client.get(path, headers=_bearer())
    assert (refused.status_code, refused.text) == (401, "unauthorized")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200  # positive control: the same route, with the token


async def test_operator_token_leaves_the_probes_open(tmp_path: Path) -> None:
    async def ok() -> None:
        return None

    app, _, _, _ = build(tmp_path, env={"AR_OPERATOR_TOKEN": OPERATOR_TOKEN}, probes={"forge": ok})
    async with _client(app) as client:
        answers = {p: await client.get(p) for p in ("/healthz", "/readyz", "/version")}
    assert {p: a.status_code for p, a in answers.items()} == dict.fromkeys(answers, 200)


async def test_without_operator_token_info_and_metrics_stay_open(tmp_path: Path) -> None:
    app, _, _, _ = build(tmp_path)
    async with _client(app) as client:
        info = await client.get("/info")
        metrics = await client.get("/metrics", headers=_bearer())  # a token is simply ignored
    assert info.status_code == 200
    assert info.json()["name"] == "auto-review"
    assert metrics.status_code == 200


async def test_operator_token_guessing_is_rate_limited_before_the_comparison(
    tmp_path: Path,
) -> None:
    app, _, _, _ = build(
        tmp_path,
        env={"AR_OPERATOR_TOKEN": OPERATOR_TOKEN, "AR_WEBHOOK_CLIENT_BURST": "3"},
    )
    guess = _bearer("operator-" + "g" * 40)
    async with _client(app) as client:
        first = [(await client.get("/info", headers=guess)).status_code for _ in range(3)]
        limited = await client.get("/metrics", headers=guess)
        right_but_limited = await client.get("/info", headers=_bearer())
        hook = await client.post("/webhooks/forgejo", content=b"{}")
    assert first == [401, 401, 401]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    # The client's budget is spent: even the right token waits, so no answer tells a guess apart.
    assert right_but_limited.status_code == 429
    # The operator routes have their own buckets: guessing there does not block the forge.
    assert hook.status_code == 401


async def test_operator_token_never_reaches_answers_or_logs(tmp_path: Path) -> None:
    env = {"AR_OPERATOR_TOKEN": OPERATOR_TOKEN}
    out = io.StringIO()
    configure_logging(secrets=settings(**env).secret_values(), fmt="json", stream=out)
    app, gw, _, _ = build(tmp_path, env=env)
    async with gw.running(), _client(app) as client:
        answers = [
            await client.get("/info", headers=_bearer()),
            await client.get("/metrics", headers=_bearer()),
            await client.get("/info", headers=_bearer(OPERATOR_TOKEN + "x")),
            await client.get("/metrics"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 401, 401]
    for answer in answers:
        assert OPERATOR_TOKEN not in answer.text
        assert OPERATOR_TOKEN not in str(answer.headers)
    logged = [json.loads(line) for line in out.getvalue().splitlines()]
    refusals = [e for e in logged if e["event"] == "operator_unauthorized"]
    assert [e["path"] for e in refusals] == ["/info", "/metrics"]  # positive control
    assert OPERATOR_TOKEN not in out.getvalue()


@pytest.mark.parametrize(
    ("bind", "token", "warned"),
    [
        ("0.0.0.0:8080", None, True),
        ("[::]:8080", None, True),
        ("gateway.example:8080", None, True),
        ("127.0.0.1:8080", None, False),
        ("[::1]:8080", None, False),
        ("localhost:8080", None, False),
        ("0.0.0.0:8080", OPERATOR_TOKEN, False),
    ],
)
async def test_gateway_start_warns_once_when_open_operator_endpoints_listen_beyond_loopback(
    tmp_path: Path, bind: str, token: str | None, warned: bool
) -> None:
    env = {"AR_GATEWAY_BIND": bind} | ({"AR_OPERATOR_TOKEN": token} if token else {})
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    _, gw, _, _ = build(tmp_path, env=env)
    async with gw.running():
        pass
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert "gateway_started" in events  # positive control: the start was logged here
    assert events.count("operator_endpoints_unauthenticated") == (1 if warned else 0)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_matched_case_insensitively(scheme: str) -> None:
    token = OPERATOR_TOKEN.encode()
    assert bearer_matches(f"{scheme} {OPERATOR_TOKEN}", token)
    assert not bearer_matches(f"{scheme} {OPERATOR_TOKEN[:-1]}", token)
    assert not bearer_matches(f"Basic {OPERATOR_TOKEN}", token)


async def test_a_non_ascii_operator_token_is_accepted_as_clients_send_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # F64: settings count a secret in UTF-8 bytes, and curl or Prometheus send a header's bytes
    # as they are, but the gateway compared the UTF-8 of Starlette's Latin-1 reading of them (no
    # request could match) and ops status could not put the token in a header at all.
    token = "opérateur-" + "é" * 20
    app, _, _, _ = build(tmp_path, env={"AR_OPERATOR_TOKEN": token})
    async with _client(app) as client:
        sent = await client.get("/info", headers={"Authorization": f"Bearer {token}".encode()})
        wrong = await client.get(
            "/info", headers={"Authorization": f"Bearer {token[:-1]}è".encode()}
        )
    assert (sent.status_code, wrong.status_code) == (200, 401)

    def local_client(timeout_secs: float) -> httpx.AsyncClient:
        return _client(app)

    monkeypatch.setattr(_status, "gateway_client", local_client)
    status = await _status.gateway_status("http://gw", operator_token=SecretStr(token))
    assert status.info["name"] == "auto-review"

"""``webhook test`` and ``ops status`` against a real ``auto-review gateway --bare`` process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.gateway_process import GatewayProcess, free_port
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES, DEMO_HEAD_FILES
from tests.unit.cli._cli import clean_env, run_cli, strong_secret

pytestmark = pytest.mark.slow

SECRET = strong_secret()
OPERATOR_TOKEN = strong_secret()
REPO = "alice/demo"


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeForge]:
    with FakeForge(tmp_path_factory.mktemp("forge")) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(forge: FakeForge, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path_factory.mktemp("gateway"),
        forge_url=forge.url,
        forge_token=forge.bot_token,
        env={"WEBHOOK_SECRET": SECRET},
    ).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def guarded_gateway(
    forge: FakeForge, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway whose /info and /metrics want AR_OPERATOR_TOKEN."""
    process = GatewayProcess(
        tmp_path_factory.mktemp("guarded"),
        forge_url=forge.url,
        forge_token=forge.bot_token,
        env={"WEBHOOK_SECRET": SECRET, "AR_OPERATOR_TOKEN": OPERATOR_TOKEN},
    ).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)


def test_webhook_test_sends_a_signed_ping_and_sample_event_both_accepted(
    gateway: GatewayProcess,
) -> None:
    ran = run_cli("webhook", "test", "--gateway-url", gateway.url, "--json")
    assert ran.code == 0, ran.output
    report = json.loads(ran.stdout)
    assert report["url"] == f"{gateway.url}/webhooks/forgejo"
    assert [(d["event"], d["status"], d["accepted"]) for d in report["deliveries"]] == [
        ("ping", 200, True), ("pull_request", 202, True)
    ]  # fmt: skip
    assert SECRET not in ran.output
    # The sample names a PR no forge has and is a "closed" event: no job is ever queued.
    assert gateway.jobs() == []


def test_webhook_test_fails_with_a_secret_the_gateway_does_not_hold(
    gateway: GatewayProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", strong_secret())
    ran = run_cli("webhook", "test", "alice/demo", "--gateway-url", gateway.url)
    assert ran.code == 1
    assert "HTTP 401" in ran.stdout
    assert "differs from the gateway's" in ran.stderr


def test_webhook_test_fails_when_no_gateway_listens() -> None:
    ran = run_cli("webhook", "test", "--gateway-url", f"http://127.0.0.1:{free_port()}")
    assert ran.code == 1
    assert "auto-review gateway" in ran.stderr


def test_ops_status_summarises_version_info_and_metrics(gateway: GatewayProcess) -> None:
    assert run_cli("webhook", "test", "--gateway-url", gateway.url).code == 0
    ran = run_cli("ops", "status", "--gateway-url", gateway.url, "--json")
    assert ran.code == 0, ran.output
    status = json.loads(ran.stdout)
    assert status["version"] == status["info"]["version"]
    assert status["info"]["isolation"]["tier"] == "none"
    assert status["webhooks"]["pong"] >= 1
    assert status["webhooks"]["accepted"] >= 1
    assert "queued" in status["info"]["queue"]
    assert SECRET not in ran.stdout
    human = run_cli("ops", "status", "--gateway-url", gateway.url)
    assert human.code == 0
    for label in ("isolation", "queue", "reviews since start", "webhooks"):
        assert label in human.stdout
    # Each control that is not on, with the reason /info gives (bare: every one is off).
    reasons = status["info"]["isolation"]["reasons"]
    assert reasons["seccomp"].startswith("bare mode"), reasons
    shown = " ".join(human.stdout.split())
    for name in status["info"]["isolation"]["controls"]:
        assert f"{name} off" in shown, name
    assert "bare mode (--bare or" in shown


def test_ops_status_sends_the_operator_token_from_the_environment(
    guarded_gateway: GatewayProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AR_OPERATOR_TOKEN", OPERATOR_TOKEN)
    ran = run_cli("ops", "status", "--gateway-url", guarded_gateway.url, "--json")
    assert ran.code == 0, ran.output
    status = json.loads(ran.stdout)
    assert status["info"]["name"] == "auto-review"
    assert "queued" in status["info"]["queue"]
    assert OPERATOR_TOKEN not in ran.output


@pytest.mark.parametrize(
    ("token", "said"),
    [
        (None, "it requires a bearer token: set AR_OPERATOR_TOKEN to the gateway's value"),
        (strong_secret(), "AR_OPERATOR_TOKEN here differs from the gateway's"),
    ],
    ids=["unset", "wrong"],
)
def test_ops_status_explains_a_401_from_a_gateway_that_wants_the_operator_token(
    guarded_gateway: GatewayProcess, monkeypatch: pytest.MonkeyPatch, token: str | None, said: str
) -> None:
    if token is not None:
        monkeypatch.setenv("AR_OPERATOR_TOKEN", token)
    ran = run_cli("ops", "status", "--gateway-url", guarded_gateway.url)
    assert ran.code == 1
    assert f"the gateway answered 401 to /info: {said}" in " ".join(ran.stderr.split())
    assert OPERATOR_TOKEN not in ran.output


def test_ops_status_exits_1_when_the_gateway_is_unreachable() -> None:
    ran = run_cli("ops", "status", "--gateway-url", f"http://127.0.0.1:{free_port()}")
    assert ran.code == 1
    assert "no answer" in ran.stderr


def test_registered_hook_delivers_forge_events_the_gateway_accepts(
    forge: FakeForge, gateway: GatewayProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEJO_BASE_URL", forge.url)
    monkeypatch.setenv("AR_FORGEJO_TOKEN", forge.bot_token)
    forge.create_repo(REPO, DEMO_BASE_FILES, bot_permission="admin")
    ran = run_cli("webhook", "register", REPO, "--gateway-url", gateway.url)
    assert ran.code == 0, ran.output
    forge.push(REPO, "feature", DEMO_HEAD_FILES, message="change")
    forge.open_pull(REPO, head="feature", title="Fix", author="alice")
    assert [d.status for d in forge.deliveries][-1:] == [202]

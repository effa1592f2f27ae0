"""``auto-review webhook register|list|unregister`` against the fake forge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES
from tests.unit.cli._cli import clean_env, run_cli, strong_secret

from auto_review.ops import WEBHOOK_EVENTS

REPO = "alice/demo"
GATEWAY = "https://review.example.org"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_forge: FakeForge) -> str:
    clean_env(monkeypatch, tmp_path)
    value = strong_secret()
    monkeypatch.setenv("FORGEJO_BASE_URL", fake_forge.url)
    monkeypatch.setenv("AR_FORGEJO_TOKEN", fake_forge.bot_token)
    monkeypatch.setenv("WEBHOOK_SECRET", value)
    fake_forge.create_repo(REPO, DEMO_BASE_FILES, bot_permission="admin")
    return value


def test_register_creates_one_signed_hook_and_is_idempotent(
    fake_forge: FakeForge, secret: str
) -> None:
    ran = run_cli("webhook", "register", REPO, "--gateway-url", GATEWAY + "/")
    assert ran.code == 0, ran.output
    (hook,) = fake_forge.repo(REPO).hooks
    assert hook.config["url"] == f"{GATEWAY}/webhooks/forgejo"
    assert hook.config["secret"] == secret
    assert (hook.config["content_type"], hook.active) == ("json", True)
    assert tuple(hook.events) == WEBHOOK_EVENTS
    assert secret not in ran.output
    again = run_cli("webhook", "register", REPO, "--gateway-url", GATEWAY, "--json")
    assert again.code == 0
    assert json.loads(again.stdout)["created"] is False
    assert len(fake_forge.repo(REPO).hooks) == 1


def test_register_refuses_a_short_secret_before_any_forge_call(
    fake_forge: FakeForge, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "short-secret")
    calls = len(fake_forge.calls)
    ran = run_cli("webhook", "register", REPO, "--gateway-url", GATEWAY)
    assert ran.code == 1
    assert "WEBHOOK_SECRET" in ran.stderr
    assert "32" in ran.stderr
    assert "short-secret" not in ran.output
    assert len(fake_forge.calls) == calls
    assert fake_forge.repo(REPO).hooks == []


def test_register_refuses_a_repetitive_secret_and_accepts_a_random_one(
    fake_forge: FakeForge, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "ab" * 20)
    refused = run_cli("webhook", "register", REPO, "--gateway-url", GATEWAY)
    assert refused.code == 1
    assert "random" in refused.stderr
    assert fake_forge.repo(REPO).hooks == []
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    assert run_cli("webhook", "register", REPO, "--gateway-url", GATEWAY).code == 0


def test_register_reports_missing_admin_rights_as_a_failure(
    fake_forge: FakeForge, secret: str
) -> None:
    fake_forge.create_repo("bob/other", DEMO_BASE_FILES, bot_permission="write")
    ran = run_cli("webhook", "register", "bob/other", "--gateway-url", GATEWAY)
    assert ran.code == 1
    assert "give the bot account admin" in ran.stderr
    assert fake_forge.repo("bob/other").hooks == []


def test_list_of_an_unknown_repository_says_what_to_check(secret: str) -> None:
    ran = run_cli("webhook", "list", "nobody/nothing")
    assert ran.code == 1
    assert "check the name" in ran.stderr


def test_register_refuses_a_bad_gateway_url_and_a_bad_repository_name(secret: str) -> None:
    assert run_cli("webhook", "register", REPO, "--gateway-url", "ftp://x").code == 1
    assert run_cli("webhook", "register", "not-a-repo", "--gateway-url", GATEWAY).code == 2


def test_list_shows_hooks_as_json_and_says_when_there_are_none(
    fake_forge: FakeForge, secret: str
) -> None:
    empty = run_cli("webhook", "list", REPO)
    assert (empty.code, "no webhooks" in empty.stderr) == (0, True)
    fake_forge.add_hook(REPO, "http://other.example/hook", secret="s" * 32)
    run_cli("webhook", "register", REPO, "--gateway-url", GATEWAY)
    ran = run_cli("webhook", "list", REPO, "--json")
    assert ran.code == 0
    hooks = json.loads(ran.stdout)
    assert [h["url"] for h in hooks] == ["http://other.example/hook", f"{GATEWAY}/webhooks/forgejo"]
    assert all("secret" not in h for h in hooks)
    assert "s" * 32 not in ran.stdout


def test_unregister_by_id_and_by_url_substring(fake_forge: FakeForge, secret: str) -> None:
    first = fake_forge.add_hook(REPO, "http://one.example/webhooks/forgejo", secret="s" * 32)
    fake_forge.add_hook(REPO, "http://two.example/webhooks/forgejo", secret="s" * 32)
    fake_forge.add_hook(REPO, "http://keep.example/hook", secret="s" * 32)
    ran = run_cli("webhook", "unregister", REPO, "--id", str(first.id))
    assert (ran.code, f"removed webhook {first.id}" in ran.stdout) == (0, True)
    ran = run_cli("webhook", "unregister", REPO, "--url", "two.example", "--json")
    assert [h["url"] for h in json.loads(ran.stdout)] == ["http://two.example/webhooks/forgejo"]
    assert [h.config["url"] for h in fake_forge.repo(REPO).hooks] == ["http://keep.example/hook"]


def test_unregister_fails_when_nothing_matches_and_needs_exactly_one_selector(
    fake_forge: FakeForge, secret: str
) -> None:
    fake_forge.add_hook(REPO, "http://keep.example/hook", secret="s" * 32)
    missing = run_cli("webhook", "unregister", REPO, "--url", "nowhere")
    assert missing.code == 1
    assert "webhook list" in missing.stderr
    assert run_cli("webhook", "unregister", REPO).code == 2
    assert run_cli("webhook", "unregister", REPO, "--id", "1", "--url", "x").code == 2
    assert len(fake_forge.repo(REPO).hooks) == 1


def test_error_text_that_looks_like_markup_is_printed_as_it_is(
    fake_forge: FakeForge, secret: str
) -> None:
    ran = run_cli("webhook", "unregister", REPO, "--url", "[/bold]x[red]")
    assert ran.code == 1
    assert "[/bold]x[red]" in ran.stderr

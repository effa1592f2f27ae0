"""``auto-review auth init`` against the fake forge."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.fakes.forge import FakeForge
from tests.unit.cli._cli import clean_env, run_cli

from auto_review.hosts import BOT_TOKEN_SCOPES

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch, tmp_path)


def test_auth_init_prints_only_the_minted_token_to_stdout(fake_forge: FakeForge) -> None:
    fake_forge.add_user("review-bot", password=PASSWORD)
    ran = run_cli("auth", "init", "--forge-url", fake_forge.url, "--username", "review-bot",
                  "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert ran.code == 0, ran.output
    token = ran.stdout.strip()
    assert ran.stdout == token + "\n"
    (minted,) = [t for t in fake_forge.state.tokens if t.owner == "review-bot"]
    assert (minted.sha1, minted.name, tuple(minted.scopes)) == (
        token,
        "auto-review",
        BOT_TOKEN_SCOPES,
    )
    who = httpx.get(f"{fake_forge.url}/api/v1/user", headers={"Authorization": f"token {token}"})
    assert who.json()["login"] == "review-bot"
    assert PASSWORD not in ran.output
    assert "AR_FORGEJO_TOKEN" in ran.stderr


def test_auth_init_flag_overrides_the_environment_url(
    fake_forge: FakeForge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEJO_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AR_BOT_LOGIN", "review-bot")
    fake_forge.add_user("review-bot", password=PASSWORD)
    ran = run_cli("auth", "init", "--forge-url", fake_forge.url, "--token-name", "ci",
                  "--password-stdin", stdin=PASSWORD)  # fmt: skip
    assert ran.code == 0, ran.output
    assert [t.name for t in fake_forge.state.tokens if t.owner == "review-bot"] == ["ci"]


def test_auth_init_refuses_a_wrong_password_without_echoing_it(fake_forge: FakeForge) -> None:
    fake_forge.add_user("review-bot", password=PASSWORD)
    ran = run_cli("auth", "init", "--forge-url", fake_forge.url, "--username", "review-bot",
                  "--password-stdin", stdin="not-the-password\n")  # fmt: skip
    assert ran.code == 1
    assert ran.stdout == ""
    assert "not-the-password" not in ran.output
    assert "check --username and the password" in ran.stderr
    assert not [t for t in fake_forge.state.tokens if t.owner == "review-bot"]


def test_auth_init_with_a_used_token_name_says_to_choose_another(fake_forge: FakeForge) -> None:
    fake_forge.add_user("review-bot", password=PASSWORD)
    argv = ("auth", "init", "--forge-url", fake_forge.url, "--username", "review-bot",
            "--password-stdin")  # fmt: skip
    assert run_cli(*argv, stdin=PASSWORD).code == 0
    again = run_cli(*argv, stdin=PASSWORD)
    assert (again.code, again.stdout) == (1, "")
    assert "--token-name" in again.stderr


def test_auth_init_refuses_an_empty_password_before_calling_the_forge(
    fake_forge: FakeForge,
) -> None:
    ran = run_cli("auth", "init", "--forge-url", fake_forge.url, "--username", "review-bot",
                  "--password-stdin", stdin="\n")  # fmt: skip
    assert (ran.code, ran.stdout) == (1, "")
    assert "password" in ran.stderr
    assert fake_forge.calls == []


def test_auth_init_without_a_forge_url_names_the_variable() -> None:
    ran = run_cli("auth", "init", "--username", "bot", "--password-stdin", stdin="x\n")
    assert ran.code == 1
    assert "FORGEJO_BASE_URL" in ran.stderr


def test_auth_init_has_no_password_option_so_argv_cannot_carry_one() -> None:
    ran = run_cli("auth", "init", "--forge-url", "http://127.0.0.1:9", "--password", "x")
    assert ran.code == 2


def test_auth_init_reads_the_password_from_a_hidden_prompt(fake_forge: FakeForge) -> None:
    fake_forge.add_user("review-bot", password=PASSWORD)
    ran = run_cli("auth", "init", "--forge-url", fake_forge.url, "--username", "review-bot",
                  stdin=PASSWORD + "\n")  # fmt: skip
    assert ran.code == 0, ran.output
    (minted,) = [t for t in fake_forge.state.tokens if t.owner == "review-bot"]
    assert ran.stdout.strip() == minted.sha1
    assert "Password" in ran.stderr
    assert PASSWORD not in ran.output  # the prompt does not echo

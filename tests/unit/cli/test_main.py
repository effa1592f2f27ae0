"""The root command imports a command group only when that group runs.

``COMMANDS`` in cli/main.py names each group's module and the short help the root's ``--help``
shows; these tests hold the table to the real groups, check what each start imports (in a fresh
interpreter, as ``sys.modules`` of this one holds whatever other tests imported) and that
lookup, help, errors and completion behave as with every group imported up front.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from tests.unit.cli._cli import clean_env, run_cli, subcommands

from auto_review.cli.main import COMMANDS, app, load_command

# What a start leaves in sys.modules, written as JSON to the file named by argv[1].
_PROBE = """
import atexit, json, sys
out, sys.argv = sys.argv[1], ["auto-review", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from auto_review.cli.main import main
main()
"""
_GROUP_MODULES = {entry.module for entry in COMMANDS.values()}
# Each of these is heavy and belongs to other commands: the gateway's web stack, the forge
# client's HTTP library, the model client and the review pipeline.
_HEAVY = {"starlette", "uvicorn", "httpx", "auto_review.llm", "auto_review.review"}


def _imported_by(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``auto-review ARGS`` in a new interpreter; its result and the modules it imported."""
    out = tmp_path / "modules.json"
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "AR_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, set(json.loads(out.read_text()))


def test_commands_table_names_each_command_with_the_short_help_of_its_module() -> None:
    for name, entry in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        first_paragraph = (command.help or "").split("\n\n")[0].strip()
        assert entry.help == first_paragraph, f"{name}: COMMANDS says {entry.help!r}"


def test_commands_table_holds_a_group_where_a_group_is_declared() -> None:
    # auth has one subcommand: it must stay ``auth init``, not collapse into ``auth``.
    assert set(subcommands(load_command("auth"))) == {"init"}
    assert set(subcommands(load_command("sandbox"))) == {"check", "run"}
    assert subcommands(load_command("gateway")) == {}


def test_version_imports_no_command_group(tmp_path: Path) -> None:
    done, modules = _imported_by(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("auto-review ")
    assert not modules & _GROUP_MODULES
    assert not modules & _HEAVY
    assert "auto_review.cli._common" not in modules  # the settings machinery


def test_root_help_lists_every_command_and_imports_none(tmp_path: Path) -> None:
    done, modules = _imported_by(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for name, entry in COMMANDS.items():
        assert name in done.stdout
        assert entry.help[:40] in " ".join(done.stdout.split())
    assert not modules & _GROUP_MODULES


def test_sandbox_check_imports_only_the_sandbox_group(tmp_path: Path) -> None:
    done, modules = _imported_by(tmp_path, "sandbox", "check", "--json")
    # 1 when this host cannot hold the tier: the imports are the same either way.
    assert done.returncode in (0, 1), done.stderr
    assert json.loads(done.stdout)["requested"]
    assert modules & _GROUP_MODULES == {"auto_review.cli.sandbox"}
    assert not modules & _HEAVY


def test_gateway_imports_only_the_gateway_group_and_not_the_service_until_it_serves(
    tmp_path: Path,
) -> None:
    """The sandbox's inner gateway is ``auto-review gateway`` too: it loads no other group; the
    launcher outside the sandbox (and ``--help``) does not import the service it confines."""
    done, modules = _imported_by(tmp_path, "gateway", "--help")
    assert done.returncode == 0, done.stderr
    assert modules & _GROUP_MODULES == {"auto_review.cli.gateway"}
    assert not modules & (_HEAVY | {"auto_review.gateway", "auto_review.bench"})


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_its_own_help(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path)
    ran = run_cli(name, "--help")
    assert ran.code == 0, ran.output
    assert f"auto-review {name}" in ran.stdout
    assert COMMANDS[name].help[:40] in " ".join(ran.stdout.split())


def test_unknown_command_is_a_usage_error_suggesting_a_near_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path)
    near = run_cli("sandbx")
    assert near.code == 2
    assert "No such command 'sandbx'. Did you mean 'sandbox'?" in near.stderr
    far = run_cli("teleport")
    assert far.code == 2
    assert "No such command 'teleport'." in far.stderr
    assert "Did you mean" not in far.stderr


def test_completion_offers_command_names_and_a_group_s_subcommands() -> None:
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    assert [item.value for item in root.shell_complete(ctx, "sa")] == ["sandbox"]
    sandbox = subcommands(root)["sandbox"]
    offered = [item.value for item in sandbox.shell_complete(typer.Context(sandbox), "ch")]
    assert offered == ["check"]

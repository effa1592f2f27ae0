"""``auto-review config`` and the root options, in-process and as a real subprocess."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from auto_review import __version__
from auto_review.cli.main import app
from auto_review.errors import ConfigError
from auto_review.settings import ENV_NAMES

WEBHOOK_SECRET = "whsec-" + "q" * 40
FORGE_TOKEN = "forge-token-5e6f7a8b9c0d"
SHORT_SECRET = "short-secret-zz9"

GOOD_ENV = {
    "FORGEJO_BASE_URL": "https://forge.example",
    "AR_FORGEJO_TOKEN": FORGE_TOKEN,
    "LLM_BASE_URL": "http://127.0.0.1:11434/v1",
    "WEBHOOK_SECRET": WEBHOOK_SECRET,
}
BAD_ENV = {
    "AR_FORGEJO_TOKEN": FORGE_TOKEN,
    "WEBHOOK_SECRET": SHORT_SECRET,
    "LLM_BASE_URL": "ftp://model.example",
    "AR_ISOLATION": "paranoid",
    "AR_ISOLATON": "full",
}
# FORGEJO_BASE_URL missing, WEBHOOK_SECRET short, LLM_BASE_URL bad scheme, AR_ISOLATION invalid.
BAD_ENV_PROBLEMS = ("FORGEJO_BASE_URL", "WEBHOOK_SECRET", "LLM_BASE_URL", "AR_ISOLATION")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's own AR_*/LLM_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name in ENV_NAMES or name.startswith("AR_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
            root.removeHandler(handler)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_prints_the_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"auto-review {__version__}\n"


def test_cli_help_lists_the_config_group(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "config" in result.stdout
    assert "--version" in result.stdout


def test_config_show_prints_a_table_with_secrets_masked(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "show"], env=GOOD_ENV)
    assert result.exit_code == 0, result.output
    assert "WEBHOOK_SECRET" in result.stdout
    assert "********" in result.stdout
    assert WEBHOOK_SECRET not in result.output
    assert FORGE_TOKEN not in result.output


def test_config_show_json_masks_every_secret(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "show", "--json"], env=GOOD_ENV)
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["WEBHOOK_SECRET"] == "********"
    assert view["AR_FORGEJO_TOKEN"] == "********"
    assert view["FORGEJO_BASE_URL"] == "https://forge.example"
    assert view["AR_CI_REVIEW_TOKEN"] is None
    assert WEBHOOK_SECRET not in result.output
    assert FORGE_TOKEN not in result.output


def test_config_show_refuses_an_invalid_environment(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "show"], env=BAD_ENV)
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert SHORT_SECRET not in result.output


def test_config_check_passes_a_good_environment(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "check"], env=GOOD_ENV)
    assert result.exit_code == 0, result.output
    assert "configuration is valid" in result.stdout
    assert WEBHOOK_SECRET not in result.output


def test_config_check_lists_every_problem_and_exits_1(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "check"], env=BAD_ENV)
    assert result.exit_code == 1
    for name in BAD_ENV_PROBLEMS:
        assert name in result.stderr
    assert "4 problem(s)" in result.stderr
    assert "did you mean AR_ISOLATION?" in result.stderr
    for value in (SHORT_SECRET, FORGE_TOKEN, "paranoid", "ftp://model.example"):
        assert value not in result.output


def test_config_check_json_reports_problems_and_warnings(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "check", "--json"], env=BAD_ENV)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == len(BAD_ENV_PROBLEMS)
    assert report["warnings"] == [
        "unknown variable AR_ISOLATON is ignored; did you mean AR_ISOLATION?"
    ]
    assert SHORT_SECRET not in result.output


def _installed_cli() -> Path:
    path = Path(sys.executable).parent / "auto-review"
    if not path.exists():
        found = shutil.which("auto-review")
        if found is None:
            pytest.skip("the auto-review console script is not installed next to this Python")
        path = Path(found)
    return path


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith("AR_")}
    return subprocess.run(
        [str(_installed_cli()), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_script_prints_version_and_help() -> None:
    version = _run(["--version"], {})
    assert (version.returncode, version.stdout) == (0, f"auto-review {__version__}\n")
    helped = _run(["--help"], {})
    assert helped.returncode == 0
    assert "config" in helped.stdout


def test_console_script_config_check_exits_1_listing_problems_without_secrets() -> None:
    result = _run(["config", "check"], BAD_ENV)
    assert result.returncode == 1
    for name in BAD_ENV_PROBLEMS:
        assert name in result.stderr
    assert SHORT_SECRET not in result.stdout + result.stderr
    assert FORGE_TOKEN not in result.stdout + result.stderr


def test_console_script_config_check_exits_0_with_a_good_environment() -> None:
    result = _run(["config", "check"], GOOD_ENV)
    assert result.returncode == 0, result.stderr
    assert WEBHOOK_SECRET not in result.stdout + result.stderr


def test_console_script_config_show_masks_secrets() -> None:
    result = _run(["config", "show", "--json"], GOOD_ENV)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["WEBHOOK_SECRET"] == "********"
    assert WEBHOOK_SECRET not in result.stdout + result.stderr
    assert FORGE_TOKEN not in result.stdout + result.stderr


def test_console_script_config_show_reports_every_problem_with_exit_1() -> None:
    result = _run(["config", "show"], BAD_ENV)
    assert result.returncode == 1
    # show needs no forge, so the missing FORGEJO_BASE_URL is not a problem here.
    assert "3 configuration problem(s)" in result.stderr
    assert "Traceback" not in result.stderr
    assert SHORT_SECRET not in result.stdout + result.stderr

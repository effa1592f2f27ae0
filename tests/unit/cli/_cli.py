"""Run ``auto-review`` in-process through its real entry point (``main``), with a clean env."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer
from typer.testing import CliRunner

from auto_review.cli.main import main
from auto_review.settings import ENV_NAMES

__all__ = ["Ran", "clean_env", "run_cli", "strong_secret", "subcommands"]


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def strong_secret() -> str:
    return secrets.token_hex(24)


def clean_env(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    """No auto-review variable from the developer's shell; state in ``state_dir``."""
    for name in list(os.environ):
        if name in ENV_NAMES or name.startswith("AR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AR_STATE_DIR", str(state_dir))
    monkeypatch.setenv("AR_LOG_FORMAT", "console")


def run_cli(*args: str, stdin: str | None = None) -> Ran:
    """``auto-review ARGS`` through ``main()`` (errors become exit codes there)."""
    runner = CliRunner()
    code = 0
    with (
        runner.isolation(input=stdin) as (out, err, _),
        mock.patch.object(sys, "argv", ["auto-review", *args]),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return Ran(code, stdout, stderr)


def subcommands(command: Any) -> dict[str, Any]:
    """A group's commands by name, as click looks them up (the root imports each on lookup);
    empty for a command that is not a group."""
    if not hasattr(command, "list_commands"):
        return {}
    ctx = typer.Context(command)
    return {name: command.get_command(ctx, name) for name in command.list_commands(ctx)}

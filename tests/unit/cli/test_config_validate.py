from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from auto_review.cli.main import app


def test_config_validate_accepts_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / ".auto_review.yaml"
    path.write_text("enabled: true\nignored_paths: ['docs/']\n")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 0


def test_config_validate_refuses_bad_value_and_strict_refuses_unknown_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("enabled: flase\n")
    assert CliRunner().invoke(app, ["config", "validate", str(bad)]).exit_code == 1
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("mode: x\n")
    assert CliRunner().invoke(app, ["config", "validate", str(unknown)]).exit_code == 0
    strict = CliRunner().invoke(app, ["config", "validate", "--strict", "--json", str(unknown)])
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["problems"][0].startswith("unknown key mode")

"""Deployment files agree with the code: known variables, hardening that keeps the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

from auto_review.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "deploy" / "systemd" / "auto-review.service"
ENV_EXAMPLE = ROOT / "deploy" / "auto-review.env.example"


def _directives() -> dict[str, str]:
    found = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def test_systemd_unit_keeps_user_namespaces_and_seccomp_usable() -> None:
    unit = _directives()
    assert unit["ExecStart"].endswith("auto-review gateway")  # positive control: parsed
    for forbidden in ("RestrictNamespaces", "PrivateUsers", "SystemCallFilter"):
        assert forbidden not in unit, forbidden
    assert int(unit["TimeoutStopSec"]) > 30  # longer than the default shutdown grace


def test_env_example_names_only_known_variables() -> None:
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert "WEBHOOK_SECRET" in names
    assert names <= ENV_NAMES, sorted(names - ENV_NAMES)

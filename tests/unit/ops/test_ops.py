"""The ``ops`` package: its surface, its layering, and the checks that need a staged host."""

from __future__ import annotations

import ast
import asyncio
import importlib
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from auto_review import bench, ops
from auto_review.errors import ConfigError
from auto_review.ops import Check, CheckState, check_webhook_secret, hook_url, run_doctor
from auto_review.sandbox import Control, HostSupport, SandboxSetupError, Tier
from auto_review.sandbox.probe import Feature
from auto_review.settings import load_settings

PACKAGES = {
    "ops": Path(ops.__file__).parent,
    "bench": Path(bench.__file__).parent,
}
# Operator functions sit under cli and above everything they diagnose; they never import cli.
FORBIDDEN = ("auto_review.cli", "auto_review.gateway", "auto_review.chat")


def _support(*, userns: bool, seccomp: bool = True, landlock: int = 7) -> HostSupport:
    return HostSupport(
        user_namespaces=Feature(
            userns, "probed", "" if userns else "sysctl kernel.unprivileged_userns_clone=1"
        ),
        seccomp=Feature(seccomp, "probed", "" if seccomp else "CONFIG_SECCOMP_FILTER=y"),
        landlock_abi=landlock,
        cgroup=Feature(False, "not delegated", "systemd Delegate=yes"),
    )


@pytest.mark.parametrize(("package", "module"), [
    (name, p.stem) for name, d in PACKAGES.items() for p in sorted(d.glob("*.py"))
])  # fmt: skip
def test_each_module_declares_all_resolves_it_and_imports_only_downward(
    package: str, module: str
) -> None:
    dotted = f"auto_review.{package}" + ("" if module == "__init__" else f".{module}")
    mod = importlib.import_module(dotted)
    assert all(hasattr(mod, name) for name in mod.__all__)
    tree = ast.parse((PACKAGES[package] / f"{module}.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [name for name in imported if name.startswith(FORBIDDEN)]


_CONFINED = (
    Control("seccomp", "on", "Seccomp: 2 read back"),
    Control("pid_namespace", "off", "tier restricted uses no namespaces"),
    Control("cgroup_limits", "unavailable", "not delegated"),
)


def _doctor(
    env: dict[str, str],
    support: HostSupport,
    tmp_path: Path,
    confine: Callable[[Tier], tuple[Control, ...]] = lambda tier: _CONFINED,
) -> dict[str, Check]:
    settings = load_settings({"AR_STATE_DIR": str(tmp_path), **env}).settings
    report = asyncio.run(
        run_doctor(settings, timeout_secs=0.5, probe=lambda: support, confine=confine)
    )
    return {c.name: c for c in report.checks}


def test_doctor_fails_a_tier_the_probe_says_this_host_cannot_give(tmp_path: Path) -> None:
    checks = _doctor({"AR_ISOLATION": "full"}, _support(userns=False), tmp_path)
    isolation = checks["isolation"]
    assert isolation.state is CheckState.FAIL
    assert "unprivileged_userns_clone" in isolation.fix
    # Positive control: the same host gives the restricted tier.
    checks = _doctor({"AR_ISOLATION": "restricted"}, _support(userns=False), tmp_path)
    assert checks["isolation"].state is CheckState.PASS


def test_doctor_reports_the_controls_a_job_at_the_tier_reads_back(tmp_path: Path) -> None:
    asked: list[Tier] = []

    def confine(tier: Tier) -> tuple[Control, ...]:
        asked.append(tier)
        return _CONFINED

    checks = _doctor({"AR_ISOLATION": "restricted"}, _support(userns=False), tmp_path, confine)
    isolation = checks["isolation"]
    assert asked == [Tier.RESTRICTED]
    assert isolation.state is CheckState.PASS
    assert isolation.controls == _CONFINED
    assert "1 of 3 controls on" in isolation.detail


def test_doctor_fails_a_tier_the_probe_allows_but_no_job_can_be_confined_in(
    tmp_path: Path,
) -> None:
    def confine(tier: Tier) -> tuple[Control, ...]:
        raise SandboxSetupError("mount of /proc failed: EPERM", step="proc")

    checks = _doctor({"AR_ISOLATION": "full"}, _support(userns=True), tmp_path, confine)
    isolation = checks["isolation"]
    assert isolation.state is CheckState.FAIL
    assert "mount of /proc failed: EPERM" in isolation.detail
    assert "sandbox check --isolation full" in isolation.fix


def test_doctor_warns_when_the_operator_asks_for_no_isolation(tmp_path: Path) -> None:
    checks = _doctor({"AR_ISOLATION": "none"}, _support(userns=True), tmp_path)
    isolation = checks["isolation"]
    assert isolation.state is CheckState.WARN
    assert "AR_ISOLATION=full" in isolation.fix


def test_hook_url_appends_the_webhook_path_once_and_refuses_non_http() -> None:
    assert hook_url("https://r.example/") == "https://r.example/webhooks/forgejo"
    assert hook_url("https://r.example/webhooks/forgejo") == "https://r.example/webhooks/forgejo"
    for bad in ("ftp://r.example", "https://user:pw@r.example", "https://r.example/?x=1", "r"):
        with pytest.raises(ConfigError):
            hook_url(bad)


def test_webhook_secret_check_refuses_missing_short_and_repetitive_secrets() -> None:
    for bad in (None, SecretStr(""), SecretStr("x" * 31), SecretStr("abab" * 10)):
        with pytest.raises(ConfigError) as refused:
            check_webhook_secret(bad)
        assert "WEBHOOK_SECRET" in refused.value.message
    good = SecretStr("Zq8v-Y3nLr0pK6wTe9Xb2HsUa5Gc1MdJ")
    assert check_webhook_secret(good) is good


@pytest.mark.parametrize(
    ("env", "state"),
    [
        ({"AR_GATEWAY_BIND": "0.0.0.0:8080"}, CheckState.WARN),
        ({"AR_GATEWAY_BIND": "127.0.0.1:8080"}, None),
        ({"AR_OPERATOR_TOKEN": "ab" * 20, "AR_GATEWAY_BIND": "0.0.0.0:8080"}, CheckState.WARN),
        ({"AR_OPERATOR_TOKEN": "Zq8v-Y3nLr0pK6wTe9Xb2HsUa5Gc1MdJ"}, CheckState.PASS),
    ],
    ids=["open-public-bind", "open-loopback", "repetitive", "set"],
)
def test_doctor_checks_the_operator_token_where_the_bind_needs_one(
    tmp_path: Path, env: dict[str, str], state: CheckState | None
) -> None:
    checks = _doctor({"AR_ISOLATION": "none", **env}, _support(userns=True), tmp_path)
    check = checks.get("operator token")
    assert (check.state if check else None) is state
    if check is not None and state is CheckState.WARN:
        assert "AR_OPERATOR_TOKEN" in check.fix
    token = env.get("AR_OPERATOR_TOKEN")
    if token is not None:
        assert all(token not in f"{c.detail} {c.fix}" for c in checks.values())

"""``auto-review ops doctor`` against the fake forge, the scripted model and this host."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from tests.fakes.forge import FakeForge
from tests.fakes.llm import ScriptedModel, ScriptedModelServer
from tests.fakes.llm_script import SCRIPTED_API_KEY
from tests.unit.cli._cli import clean_env, run_cli, strong_secret

from auto_review.sandbox import KernelFeatureMissing, Tier, probe_host, require_tier
from auto_review.store import DATABASE_NAME, Store, known_migrations


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_forge: FakeForge,
    scripted_model_server: ScriptedModelServer,
    scripted_model: ScriptedModel,
) -> Path:
    clean_env(monkeypatch, tmp_path / "state")
    best = probe_host().best_tier
    for name, value in {
        "FORGEJO_BASE_URL": fake_forge.url,
        "AR_FORGEJO_TOKEN": fake_forge.bot_token,
        "LLM_BASE_URL": scripted_model_server.base_url,
        "LLM_API_KEY": SCRIPTED_API_KEY,
        "LLM_REASONING_MODEL": "scripted-reasoning",
        "LLM_CHEAP_MODEL": "scripted-cheap",
        "WEBHOOK_SECRET": strong_secret(),
        "AR_CI_REVIEW_TOKEN": strong_secret(),
        "AR_ISOLATION": str(best),
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "state"


def _checks(stdout: str) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(stdout)["checks"]}


def test_doctor_passes_every_check_on_a_configured_host(configured: Path) -> None:
    ran = run_cli("ops", "doctor", "--json")
    checks = _checks(ran.stdout)
    expected_names = {"forge", "forge token", "model reasoning", "model cheap", "git",
                      "webhook secret", "ci token", "state dir", "isolation"}  # fmt: skip
    assert set(checks) == expected_names
    # AR_ISOLATION=none (a host without any sandbox) is a WARN; every other check passes.
    warned = {n for n, c in checks.items() if c["state"] != "PASS"}
    assert warned <= {"isolation"}, checks
    assert ran.code == 0, ran.output
    # The doctor changes nothing: it may run as another user (root) than the gateway will.
    assert not configured.exists()
    assert "does not exist yet" in checks["state dir"]["detail"]
    assert "@auto-review" in checks["forge token"]["detail"]


def test_doctor_prints_pass_warn_fail_lines_with_fixes_and_exits_1_on_a_failure(
    configured: Path, scripted_model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_model.models = ["scripted-reasoning"]  # the cheap model is not served
    monkeypatch.setenv("AR_FORGEJO_TOKEN", "0" * 40)  # a token the forge does not know
    ran = run_cli("ops", "doctor")
    assert ran.code == 1
    lines = ran.stdout.splitlines()
    assert any(line.startswith("PASS forge:") for line in lines)
    assert any(line.startswith("FAIL forge token:") for line in lines)
    assert any(line.startswith("FAIL model cheap:") for line in lines)
    assert any(line.startswith("PASS model reasoning:") for line in lines)
    assert "fix: mint a new token" in ran.stdout
    assert "0" * 40 not in ran.output
    assert "2 failed" in ran.stdout


def test_doctor_fails_unreachable_upstreams_within_its_timeout(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEJO_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("LLM_CHEAP_MODEL")
    ran = run_cli("ops", "doctor", "--json", "--timeout", "1")
    checks = _checks(ran.stdout)
    assert ran.code == 1
    assert (checks["forge"]["state"], checks["model reasoning"]["state"]) == ("FAIL", "FAIL")
    assert checks["forge"]["fix"]
    assert checks["model reasoning"]["fix"]


def test_doctor_names_each_missing_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch, tmp_path)
    ran = run_cli("ops", "doctor", "--json")
    checks = _checks(ran.stdout)
    assert ran.code == 1
    assert "FORGEJO_BASE_URL" in checks["forge"]["detail"]
    assert "LLM_BASE_URL" in checks["model"]["detail"]
    assert checks["webhook secret"]["state"] == "FAIL"


def test_doctor_reports_an_unwritable_state_dir(
    configured: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("AR_STATE_DIR", str(blocker / "state"))
    ran = run_cli("ops", "doctor", "--json")
    state = _checks(ran.stdout)["state dir"]
    assert (ran.code, state["state"]) == (1, "FAIL")
    assert "AR_STATE_DIR" in state["fix"]


def test_doctor_reads_an_existing_database_without_writing_anything(configured: Path) -> None:
    Store.open(configured / DATABASE_NAME).close()
    before = {p.name: p.stat().st_mtime_ns for p in configured.iterdir()}
    state = _checks(run_cli("ops", "doctor", "--json").stdout)["state dir"]
    assert state["state"] == "PASS"
    assert f"database at schema {known_migrations()[-1].version}" in state["detail"]
    assert {p.name: p.stat().st_mtime_ns for p in configured.iterdir()} == before


def test_doctor_fails_on_a_database_written_by_a_newer_build(configured: Path) -> None:
    Store.open(configured / DATABASE_NAME).close()
    newer = known_migrations()[-1].version + 1
    with closing(sqlite3.connect(configured / DATABASE_NAME)) as raw, raw:
        raw.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (newer,))
    ran = run_cli("ops", "doctor", "--json")
    state = _checks(ran.stdout)["state dir"]
    assert (ran.code, state["state"]) == (1, "FAIL")
    assert f"at schema {newer}, newer than this build" in state["detail"]


def test_doctor_isolation_line_agrees_with_the_sandbox_probe(configured: Path) -> None:
    best = probe_host().best_tier
    check = _checks(run_cli("ops", "doctor", "--json").stdout)["isolation"]
    assert check["state"] == ("WARN" if best is Tier.NONE else "PASS")
    assert f"best: {best}" in check["detail"] or f"can give {best}" in check["detail"]


def test_doctor_names_the_reason_of_each_control_that_is_not_on(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restricted tier leaves controls off here whatever the host (no namespaces): the
    doctor prints each one's reason, the one `sandbox check --json` reads back for the tier."""
    try:
        require_tier(Tier.RESTRICTED, probe_host())
    except KernelFeatureMissing as exc:
        pytest.skip(f"restricted tier unavailable here: {exc.message}")
    monkeypatch.setenv("AR_ISOLATION", "restricted")
    doctor = _checks(run_cli("ops", "doctor", "--json").stdout)["isolation"]
    checked = json.loads(run_cli("sandbox", "check", "--json", "--isolation", "restricted").stdout)
    expected = checked["posture"]["controls"]
    # Same job, same tier: the same controls, states and reasons, save those that name or count
    # the job's own scratch directory (a fresh one per run) or give its process limit (here
    # raised by the processes its host uid already runs, which change between runs).
    per_run = ("noexec_writable", "disk_cap", "rlimits")
    assert [(c["name"], c["state"]) for c in doctor["controls"]] == [
        (c["name"], c["state"]) for c in expected
    ]
    by_name = {c["name"]: c["reason"] for c in doctor["controls"]}
    for control in expected:
        if control["name"] not in per_run:
            assert by_name[control["name"]] == control["reason"], control
    degraded = [c for c in doctor["controls"] if c["state"] != "on" and c["name"] not in per_run]
    assert any(c["name"] == "pid_namespace" for c in degraded), degraded
    human = " ".join(run_cli("ops", "doctor").stdout.split())
    for c in degraded:
        assert " ".join(f"{c['name']} {c['state']}: {c['reason']}".split()) in human, c


def test_doctor_gives_up_on_a_forge_that_never_answers(
    configured: Path, fake_forge: FakeForge
) -> None:
    fake_forge.hang("/version")
    ran = run_cli("ops", "doctor", "--json", "--timeout", "0.5")
    checks = _checks(ran.stdout)
    assert ran.code == 1
    assert checks["forge"]["state"] == "FAIL"
    assert checks["model reasoning"]["state"] == "PASS"  # the other probes still ran

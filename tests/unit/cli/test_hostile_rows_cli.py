"""Rows a compromised gateway wrote reach the operator's terminal escaped (THREAT-MODEL A5).

The confined gateway writes the state database; ``jobs list``, ``history list`` and
``learnings list`` run unconfined in the operator's terminal. Every text column is set to
escape sequences (OSC 52 clipboard write, screen clear, C1 CSI) and a bidi override, straight
in SQL as the gateway could; none may reach stdout raw.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.unit.cli._cli import clean_env, run_cli

from auto_review.hosts import HeadSha, RepoRef
from auto_review.jobs import HistoryEntry, ReviewHistory, SqliteJobQueue
from auto_review.memory import LearningsStore
from auto_review.ops import Check, CheckState, DoctorReport, GatewayStatus
from auto_review.review import Trigger
from auto_review.store import Store

SHOP = RepoRef("alice", "shop")
HOSTILE = "\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\x9b31m\u202eevil"
_RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _plant(db: Path, table: str, columns: tuple[str, ...]) -> None:
    with sqlite3.connect(db) as conn:
        for column in columns:
            conn.execute(f"UPDATE {table} SET {column} = {column} || ?", (HOSTILE,))  # noqa: S608


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("COLUMNS", "400")  # whole cells, not wrapped
    store = Store.in_state_dir(tmp_path)
    try:
        queue = SqliteJobQueue(store)
        queue.enqueue_review(SHOP, 7, HeadSha("a" * 40), trigger=Trigger.CI, force=False)
        ReviewHistory(store).record(HistoryEntry(SHOP, 7, "a" * 40, "ci", "posted", "ok"))
        LearningsStore(store).add(SHOP, "Prefer Decimal", author="alice", source="chat")
    finally:
        store.close()
    return Path(store.path)


def _assert_escaped(*argv: str) -> None:
    ran = run_cli(*argv)
    assert ran.code == 0, ran.output
    assert "]52;c" in ran.stdout  # the planted value is shown
    for raw in _RAW:
        assert raw not in ran.output, f"{raw!r} reached the terminal raw in {' '.join(argv)}"


def test_jobs_list_escapes_control_characters_the_gateway_stored(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobs SET state = 'failed', result = 'x', reason = 'y'")
    _plant(db, "jobs", ("head_sha", "result", "reason"))
    _assert_escaped("jobs", "list")


def test_history_list_escapes_control_characters_the_gateway_stored(db: Path) -> None:
    _plant(db, "review_outcomes", ("head_sha", "outcome", "reason"))
    _assert_escaped("history", "list")


def test_learnings_list_escapes_control_characters_the_gateway_stored(db: Path) -> None:
    _plant(db, "learnings", ("text", "author", "source"))
    _assert_escaped("learnings", "list")


def test_ops_status_escapes_control_characters_the_gateway_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    iso = {"tier": HOSTILE, "controls": {"seccomp": HOSTILE}, "reasons": {"seccomp": HOSTILE}}
    answer = GatewayStatus(
        url="http://gw", version=HOSTILE, info={"isolation": iso, "review_mode": HOSTILE},
        review_outcomes={HOSTILE: 1}, chat_outcomes={}, webhooks={}, signature_failures={},
        payload_failures=0, rate_limited=0, ci_requests={}, tokens={}, cost_usd=0.0,
        readiness={HOSTILE: True},
    )  # fmt: skip

    async def status(
        url: str, *, timeout_secs: float, operator_token: SecretStr | None
    ) -> GatewayStatus:
        return answer

    monkeypatch.setattr("auto_review.cli.ops.gateway_status", status)
    _assert_escaped("ops", "status", "--gateway-url", "http://gw")


def test_ops_doctor_escapes_control_characters_in_check_details(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    report = DoctorReport(checks=(Check("state dir", CheckState.WARN, HOSTILE, fix=HOSTILE),))

    async def doctor(settings: object, *, timeout_secs: float) -> DoctorReport:
        return report

    monkeypatch.setattr("auto_review.cli.ops.run_doctor", doctor)
    _assert_escaped("ops", "doctor")


def test_a_refused_database_is_reported_with_the_planted_names_escaped(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f'CREATE VIEW "{HOSTILE}" AS SELECT 1')
    ran = run_cli("jobs", "list")
    assert ran.code != 0
    assert "tampered" in ran.stderr
    for raw in _RAW:
        assert raw not in ran.output, f"{raw!r} reached the terminal raw"


def test_config_validate_escapes_a_repository_configs_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A PR author writes .auto_review.yaml; an operator may validate it from a checkout.
    clean_env(monkeypatch, tmp_path)
    config = tmp_path / ".auto_review.yaml"
    hostile = r"\e]52;c;cm0gLXJmIH4K\a\e[2J\x9b31m\u202eevil"  # YAML escapes
    config.write_text(f'"{hostile} [bold]markup[/]": 1\n', encoding="utf-8")
    ran = run_cli("config", "validate", "--strict", str(config))
    assert ran.code == 1
    assert "[bold]markup[/]" in ran.output  # shown, not read as markup
    for raw in _RAW:
        assert raw not in ran.output, f"{raw!r} reached the terminal raw"


def test_ops_status_survives_an_info_of_the_wrong_shapes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path)
    info = {"isolation": ["on"], "model": {"tiers": [1, None]}, "poller": "on", "bot": 7,
            "queue": {"queued": 1}}  # fmt: skip
    answer = GatewayStatus(
        url="http://gw", version="1", info=info, review_outcomes={}, chat_outcomes={},
        webhooks={}, signature_failures={}, payload_failures=0, rate_limited=0, ci_requests={},
        tokens={}, cost_usd=0.0, readiness={},
    )  # fmt: skip

    async def status(
        url: str, *, timeout_secs: float, operator_token: SecretStr | None
    ) -> GatewayStatus:
        return answer

    monkeypatch.setattr("auto_review.cli.ops.gateway_status", status)
    ran = run_cli("ops", "status", "--gateway-url", "http://gw")
    assert ran.code == 0, ran.output
    assert "queued=1" in ran.stdout

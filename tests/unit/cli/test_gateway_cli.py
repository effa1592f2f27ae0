"""``auto-review jobs`` and ``history``, in-process (``gateway``: tests/e2e)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from auto_review.cli.main import app
from auto_review.hosts import HeadSha, RepoRef
from auto_review.jobs import HistoryEntry, ReviewHistory, SqliteJobQueue
from auto_review.review import Trigger
from auto_review.settings import ENV_NAMES
from auto_review.store import Store

REPO = RepoRef("alice", "demo")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name in ENV_NAMES or name.startswith("AR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AR_STATE_DIR", str(tmp_path))
    yield
    structlog.reset_defaults()


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _queue(tmp_path: Path) -> tuple[Store, SqliteJobQueue]:
    store = Store.in_state_dir(tmp_path)
    return store, SqliteJobQueue(store)


def test_jobs_list_retry_and_cancel_round_trip(tmp_path: Path) -> None:
    store, queue = _queue(tmp_path)
    jid = queue.enqueue_review(REPO, 1, HeadSha("a" * 40), trigger=Trigger.CI, force=False).job_id
    store.close()
    code, out, _ = _invoke("jobs", "list", "--json")
    assert code == 0
    assert [(j["id"], j["state"]) for j in json.loads(out)] == [(jid, "queued")]
    code, out, _ = _invoke("jobs", "cancel", str(jid), "--json")
    assert (code, json.loads(out)[0]["state"]) == (0, "cancelled")
    code, _, _ = _invoke("jobs", "cancel", str(jid))
    assert code == 1  # refused: already cancelled
    code, out, _ = _invoke("jobs", "retry", str(jid), "--json")
    assert (code, json.loads(out)[0]["state"]) == (0, "queued")
    code, out, _ = _invoke("jobs", "list", "--state", "cancelled", "--json")
    assert json.loads(out) == []


def test_history_list_reset_and_purge(tmp_path: Path) -> None:
    store = Store.in_state_dir(tmp_path)
    history = ReviewHistory(store)
    for number in (1, 2):
        history.record(HistoryEntry(REPO, number, "a" * 40, "ci", "posted", "ok"))
    store.close()
    code, out, _ = _invoke("history", "list", "--json")
    assert (code, len(json.loads(out))) == (0, 2)
    code, out, _ = _invoke("history", "reset-pr", "alice/demo", "1")
    assert (code, "removed 1" in out) == (0, True)
    code, out, _ = _invoke("history", "purge", "--older-than-days", "0")
    assert (code, "removed 1" in out) == (0, True)

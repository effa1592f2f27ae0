"""The reply ledger: one answer per command, retries after failures and after a killed process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auto_review import store as store_module
from auto_review.chat import ChatLedger, ReplyKey
from auto_review.hosts import CommentKind, RepoRef
from auto_review.store import MEMORY, Store

KEY = ReplyKey(RepoRef("acme", "app"), CommentKind.ISSUE, 5, 0)


def _claim(ledger: ChatLedger) -> bool:
    return ledger.claim(KEY, number=1, author="maria", command="help")


def test_claim_is_taken_once_per_holder() -> None:
    ledger = ChatLedger(Store.open(MEMORY), holder="one")
    assert _claim(ledger)
    assert not _claim(ledger)
    assert ledger.settled(KEY)


def test_claim_left_by_a_killed_process_is_retaken_by_the_next() -> None:
    store = Store.open(MEMORY)
    assert _claim(ChatLedger(store, holder="killed"))
    restarted = ChatLedger(store, holder="restarted")
    assert not restarted.settled(KEY)
    assert _claim(restarted)


def test_answered_claim_is_never_retaken() -> None:
    store = Store.open(MEMORY)
    first = ChatLedger(store, holder="first")
    assert _claim(first)
    first.finish(KEY, reply_ref="comment:9")
    later = ChatLedger(store, holder="later")
    assert later.settled(KEY)
    assert not _claim(later)
    assert later.reply_ref(KEY) == "comment:9"


def test_released_claim_can_be_taken_again_by_the_same_holder() -> None:
    ledger = ChatLedger(Store.open(MEMORY), holder="one")
    assert _claim(ledger)
    ledger.release(KEY)
    assert not ledger.settled(KEY)
    assert _claim(ledger)


def test_notice_once_is_per_user_and_hour_bucket() -> None:
    now = [7200.0]
    ledger = ChatLedger(Store.open(MEMORY), clock=lambda: now[0])
    repo = RepoRef("acme", "app")
    assert ledger.notice_once(repo, 1, "Maria", "rate-user", hourly=True)
    assert not ledger.notice_once(repo, 1, "maria", "rate-user", hourly=True)
    assert ledger.notice_once(repo, 1, "olga", "rate-user", hourly=True)
    now[0] += 3600
    assert ledger.notice_once(repo, 1, "maria", "rate-user", hourly=True)


def test_usage_is_counted_per_tier() -> None:
    ledger = ChatLedger(Store.open(MEMORY))
    repo = RepoRef("acme", "app")
    for _ in range(3):
        ledger.record_usage(repo, 1, "Maria", "help", tier="free")
    ledger.record_usage(repo, 1, "maria", "review")
    assert ledger.usage_last_hour(repo, 1, "maria") == (1, 1)
    assert ledger.usage_last_hour(repo, 1, "maria", tier="free") == (3, 3)
    assert ledger.usage_last_hour(repo, 2, "bob", tier="free") == (0, 0)


def test_usage_recorded_before_the_tier_column_counts_against_the_model_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = store_module.known_migrations()
    before = tuple(m for m in every if m.version < 23)
    assert len(before) == len(every) - 1  # the tier column is the newest migration here
    monkeypatch.setattr(store_module, "known_migrations", lambda: before)
    old = Store.open(tmp_path / "state.sqlite3")
    with old.write() as conn:
        conn.execute(
            "INSERT INTO chat_usage (repo, number, login, command, at) VALUES (?, ?, ?, ?, ?)",
            ("acme/app", 1, "maria", "review", time.time()),
        )
    old.close()
    monkeypatch.setattr(store_module, "known_migrations", lambda: every)
    ledger = ChatLedger(Store.open(tmp_path / "state.sqlite3"))
    assert ledger.usage_last_hour(RepoRef("acme", "app"), 1, "maria") == (1, 1)
    assert ledger.usage_last_hour(RepoRef("acme", "app"), 1, "maria", tier="free") == (0, 0)

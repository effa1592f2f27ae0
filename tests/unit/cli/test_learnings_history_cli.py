"""``auto-review learnings`` and the ``history`` forms from the operator guide, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.unit.cli._cli import clean_env, run_cli

from auto_review.hosts import RepoRef
from auto_review.jobs import HistoryEntry, ReviewHistory
from auto_review.memory import LearningsStore
from auto_review.memory.history import ReviewHistory as ReviewMemory
from auto_review.memory.history import ReviewRun
from auto_review.store import Store

SHOP = RepoRef("alice", "shop")
TOOLS = RepoRef("bob", "tools")


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Store:
    clean_env(monkeypatch, tmp_path)
    return Store.in_state_dir(tmp_path)


def test_learnings_list_is_grouped_by_repository_and_filters_by_repo(store: Store) -> None:
    learnings = LearningsStore(store)
    kept = learnings.add(SHOP, "Prefer Decimal for money", author="alice", source="chat", number=3)
    learnings.add(TOOLS, "Shell scripts use set -eu", author="bob", source="chat")
    everything = run_cli("learnings", "list", "--json")
    assert everything.code == 0
    assert [(i["repo"], i["text"]) for i in json.loads(everything.stdout)] == [
        ("alice/shop", "Prefer Decimal for money"), ("bob/tools", "Shell scripts use set -eu")
    ]  # fmt: skip
    only = run_cli("learnings", "list", "--repo", "alice/shop", "--json")
    assert [i["id"] for i in json.loads(only.stdout)] == [kept.id]
    human = run_cli("learnings", "list")
    assert "Prefer Decimal for money" in human.stdout
    assert "#3" in human.stdout


def test_learnings_forget_needs_the_owning_repository(store: Store) -> None:
    item = LearningsStore(store).add(SHOP, "Prefer Decimal", author="alice", source="chat")
    other = run_cli("learnings", "forget", str(item.id), "--repo", "bob/tools")
    assert other.code == 1
    assert "learnings list --repo bob/tools" in other.stderr
    assert len(LearningsStore(store).list(SHOP)) == 1
    done = run_cli("learnings", "forget", str(item.id), "--repo", "alice/shop")
    assert done.code == 0
    assert LearningsStore(store).list(SHOP) == []
    assert run_cli("learnings", "forget", str(item.id)).code == 2  # --repo is required


def test_history_reset_pr_takes_owner_repo_hash_n_and_forgets_incremental_state(
    store: Store,
) -> None:
    ReviewHistory(store).record(HistoryEntry(SHOP, 7, "a" * 40, "ci", "posted", "ok"))
    memory = ReviewMemory(store)
    memory.record_run(ReviewRun(SHOP, 7, "a" * 40, "posted", "COMMENT"))
    assert memory.last_reviewed_head(SHOP, 7) == "a" * 40
    ran = run_cli("history", "reset-pr", "alice/shop#7")
    assert (ran.code, "removed 1 outcome(s) of alice/shop#7" in ran.stdout) == (0, True)
    assert memory.last_reviewed_head(SHOP, 7) is None
    assert run_cli("history", "reset-pr", "alice/shop").code == 2
    assert run_cli("history", "reset-pr", "alice/shop#x").code == 2


def test_history_purge_accepts_older_than(store: Store) -> None:
    ReviewHistory(store).record(HistoryEntry(SHOP, 1, "a" * 40, "ci", "posted", "ok"))
    ran = run_cli("history", "purge", "--older-than", "0")
    assert (ran.code, "removed 1" in ran.stdout) == (0, True)
    assert run_cli("history", "purge").code == 2


def test_learnings_list_shows_markup_in_a_learning_as_plain_text(store: Store) -> None:
    LearningsStore(store).add(SHOP, "[bold red]x[/] [link=https://evil.example]y[/]",
                              author="mallory", source="chat")  # fmt: skip
    ran = run_cli("learnings", "list")
    assert "[bold red]x[/]" in ran.stdout
    assert "[link=https://evil.example]" in ran.stdout

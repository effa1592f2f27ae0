"""Pausing automatic reviews is per PR and reports whether anything changed."""

from __future__ import annotations

from auto_review.hosts import RepoRef
from auto_review.memory import is_paused, set_paused
from auto_review.store import MEMORY, Store

A = RepoRef("acme", "app")


def test_pause_marks_only_that_pull_request() -> None:
    store = Store.open(MEMORY)
    assert set_paused(store, A, 1, paused=True, by="ann") is True
    assert is_paused(store, A, 1)
    assert not is_paused(store, A, 2)
    assert set_paused(store, A, 1, paused=True, by="ann") is False


def test_resume_clears_the_pause() -> None:
    store = Store.open(MEMORY)
    set_paused(store, A, 1, paused=True, by="ann")
    assert set_paused(store, A, 1, paused=False, by="ann") is True
    assert not is_paused(store, A, 1)
    assert set_paused(store, A, 1, paused=False, by="ann") is False

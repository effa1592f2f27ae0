"""Learnings are scoped to one repository, size-capped, and counted per repository."""

from __future__ import annotations

import pytest

from auto_review.errors import LearningRejected
from auto_review.hosts import RepoRef
from auto_review.memory import LearningsStore
from auto_review.store import MEMORY, Store

A = RepoRef("acme", "app")
B = RepoRef("acme", "other")


@pytest.fixture
def learnings() -> LearningsStore:
    return LearningsStore(Store.open(MEMORY), max_bytes=50, max_per_repo=2)


def test_learnings_lists_only_the_repository_asked_for(learnings: LearningsStore) -> None:
    learnings.add(A, "use tabs", author="ann", source="chat")
    learnings.add(B, "use spaces", author="bob", source="chat")
    assert [item.text for item in learnings.list(A)] == ["use tabs"]


def test_learnings_forget_refuses_other_repositorys_id(learnings: LearningsStore) -> None:
    other = learnings.add(B, "use spaces", author="bob", source="chat")
    assert learnings.forget(A, other.id) is False
    assert [item.id for item in learnings.list(B)] == [other.id]
    assert learnings.forget(B, other.id) is True
    assert learnings.list(B) == []


def test_learnings_refuses_text_over_the_byte_cap(learnings: LearningsStore) -> None:
    with pytest.raises(LearningRejected, match="at most 50 bytes"):
        learnings.add(A, "é" * 30, author="ann", source="chat")
    learnings.add(A, "é" * 25, author="ann", source="chat")


def test_learnings_refuses_more_than_the_per_repo_cap(learnings: LearningsStore) -> None:
    learnings.add(A, "one", author="ann", source="chat")
    learnings.add(A, "two", author="ann", source="chat")
    with pytest.raises(LearningRejected, match="limit"):
        learnings.add(A, "three", author="ann", source="chat")
    learnings.add(B, "three", author="ann", source="chat")


def test_learnings_strips_control_characters(learnings: LearningsStore) -> None:
    item = learnings.add(A, "  bell\x07 and\tnewline\n ", author="ann", source="chat")
    assert item.text == "bell and\tnewline"

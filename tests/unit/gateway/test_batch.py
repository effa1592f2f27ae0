"""ChatBatcher: concurrent chat enqueues share one commit; each caller gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from auto_review.errors import StoreError
from auto_review.gateway._batch import ChatBatcher
from auto_review.hosts import CommentKind, RepoRef
from auto_review.jobs import ChatRequest, EnqueueResult, SqliteJobQueue
from auto_review.store import Store

pytestmark = pytest.mark.anyio


class _CountingQueue(SqliteJobQueue):
    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.batches: list[int] = []
        self.fail = False

    def enqueue_chats(self, requests: Sequence[ChatRequest]) -> list[EnqueueResult]:
        self.batches.append(len(requests))
        if self.fail:
            raise StoreError("disk full")
        return super().enqueue_chats(requests)


def _request(cid: int) -> ChatRequest:
    return ChatRequest(
        RepoRef("alice", "demo"), 1, cid, "bob", "@auto-review hi", CommentKind.ISSUE
    )


async def test_batcher_commits_a_burst_once_and_answers_each_caller(tmp_path: Path) -> None:
    queue = _CountingQueue(Store.open(tmp_path / "s.sqlite3"))
    batcher = ChatBatcher(queue)
    results = await asyncio.gather(*(batcher.enqueue(_request(c)) for c in (1, 2, 3, 2)))
    assert queue.batches == [4]
    assert [r.created for r in results] == [True, True, True, False]
    assert results[1].job_id == results[3].job_id  # the same comment is one job
    await batcher.enqueue(_request(4))
    assert queue.batches == [4, 1]  # positive control: a later call is its own batch


async def test_batcher_hands_a_failed_commit_to_every_waiter(tmp_path: Path) -> None:
    queue = _CountingQueue(Store.open(tmp_path / "s.sqlite3"))
    queue.fail = True
    batcher = ChatBatcher(queue)
    results = await asyncio.gather(
        *(batcher.enqueue(_request(c)) for c in (1, 2)), return_exceptions=True
    )
    assert all(isinstance(r, StoreError) for r in results)
    queue.fail = False
    assert (await batcher.enqueue(_request(1))).created  # nothing half-written

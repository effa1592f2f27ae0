"""Group commit for chat jobs: concurrent deliveries share one durable transaction.

Every request still gets its answer only after its job is committed (nothing is acknowledged
that a crash could lose); requests that are ready in the same event-loop turn are written
together, so a burst costs one commit instead of one per delivery.
"""

from __future__ import annotations

import asyncio

from auto_review.jobs import ChatRequest, EnqueueResult, JobQueue

__all__ = ["ChatBatcher"]


class ChatBatcher:
    """Collects ``enqueue`` calls made in one loop turn and commits them in one transaction."""

    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue
        self._pending: list[tuple[ChatRequest, asyncio.Future[EnqueueResult]]] = []
        self._scheduled = False

    async def enqueue(self, request: ChatRequest) -> EnqueueResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EnqueueResult] = loop.create_future()
        self._pending.append((request, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        # shield: a caller that goes away must not cancel the shared write for the others.
        return await asyncio.shield(future)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._scheduled = False
        try:
            results = self._queue.enqueue_chats([request for request, _ in batch])
        except Exception as exc:  # handed to every waiter; each request answers on its own
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

"""Fixtures of the chat unit tests: a ``ChatService`` over an in-memory host and store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from tests.fakes.llm import scripted_llm_client
from tests.unit.chat._doubles import MemoryHost, RecordingQueue

from auto_review.chat import ChatConfig, ChatMention, ChatService
from auto_review.hosts import Permission
from auto_review.settings import LLMConfig
from auto_review.store import MEMORY, Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def host() -> MemoryHost:
    return MemoryHost(permissions={"maria": Permission.WRITE, "olga": Permission.ADMIN})


@pytest.fixture
def store() -> Store:
    return Store.open(MEMORY)


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def chat_config() -> ChatConfig:
    return ChatConfig(bot_login="auto-review", mention_name="auto-review")


ServiceFactory = Callable[..., ChatService]


class ForgeBackedService(ChatService):
    """A ``ChatService`` whose mentions exist on the in-memory forge, as delivered ones do."""

    def __init__(self, memory: MemoryHost, **kwargs: Any) -> None:
        super().__init__(host=memory, **kwargs)
        self._memory = memory

    async def run(self, request: ChatMention) -> str | None:
        self._memory.wrote(request)
        return await super().run(request)


@pytest.fixture
async def make_service(  # noqa: PLR0917 - pytest fixtures are positional
    host: MemoryHost,
    store: Store,
    queue: RecordingQueue,
    clock: Clock,
    chat_config: ChatConfig,
    scripted_llm_config: LLMConfig,
) -> AsyncIterator[ServiceFactory]:
    async with scripted_llm_client(scripted_llm_config) as (llm, _sleeps):

        def factory(config: ChatConfig | None = None, *, with_llm: bool = True) -> ChatService:
            return ForgeBackedService(
                host,
                store=store,
                config=config or chat_config,
                queue=queue,
                llm=llm if with_llm else None,
                clock=clock,
                monotonic=clock,
            )

        yield factory

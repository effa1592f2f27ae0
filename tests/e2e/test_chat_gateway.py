"""Chat through the gateway: a signed Forgejo webhook -> chat job -> worker -> ChatService ->
reply on the fake forge. The review runner is absent, so queued reviews stay visible."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.fakes.forge import FakeForge
from tests.fakes.forge_webhooks import issue_comment_payload, webhook_headers
from tests.fakes.llm import scripted_llm_client

from auto_review.chat import ChatConfig, ChatService
from auto_review.gateway import GatewayDeps, create_app
from auto_review.hosts import ForgejoHost
from auto_review.jobs import JobKind, SqliteJobQueue
from auto_review.settings import LLMConfig, load_settings
from auto_review.store import Store

pytestmark = pytest.mark.anyio

SECRET = "w" * 40
FILES = {"src/app.py": "def sub(a, b):\n    return a - b\n"}
HEAD = {"src/app.py": "def sub(a, b):\n    return a + b\n"}


async def _no_sleep(_seconds: float) -> None:
    return None


async def _wait_for(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):  # a safety bound, not a timing assertion
        while not predicate():  # noqa: ASYNC110 - polling the fake forge's state
            await asyncio.sleep(0.02)


async def test_webhook_mentions_are_answered_once_through_the_gateway(
    fake_forge: FakeForge, tmp_path: Path, scripted_llm_config: LLMConfig
) -> None:
    fake_forge.create_repo("alice/demo", FILES, bot_permission="admin")
    fake_forge.push("alice/demo", "feature", HEAD)
    pull = fake_forge.open_pull("alice/demo", head="feature", author="alice")
    repo = fake_forge.repo("alice/demo")
    repo.collaborators["maria"] = "write"
    fake_forge.add_user("reader")
    settings = load_settings(
        {
            "WEBHOOK_SECRET": SECRET,
            "FORGEJO_BASE_URL": fake_forge.url,
            "AR_FORGEJO_TOKEN": fake_forge.bot_token,
            "LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "AR_POLL_INTERVAL_SECS": "0",
        }
    ).settings
    store = Store.open(tmp_path / "state.sqlite3")
    queue = SqliteJobQueue(store)
    async with (
        httpx.AsyncClient(trust_env=False) as http,
        scripted_llm_client(scripted_llm_config) as (llm, _),
    ):
        host = ForgejoHost(
            http, base_url=fake_forge.url, token=fake_forge.bot_token, sleep=_no_sleep
        )
        chat = ChatService(
            host=host, store=store, config=ChatConfig.from_settings(settings), queue=queue, llm=llm
        )
        app = create_app(
            settings,
            GatewayDeps(
                store=store, host=host, runner=None, queue=queue, chat_runner=chat, run_poller=False
            ),
        )
        gateway = app.state.gateway
        transport = httpx.ASGITransport(app=app)
        async with (
            gateway.running(),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
        ):

            async def deliver(body_text: str, author: str, *, delivery: str) -> None:
                comment = fake_forge.comment("alice/demo", pull.number, body_text, author=author)
                data = issue_comment_payload(
                    fake_forge.state,
                    repo,
                    pull,
                    comment,
                    action="created",
                    sender=author,
                    base=fake_forge.url,
                )
                raw = json.dumps(data).encode()
                headers = webhook_headers("issue_comment", raw, SECRET, delivery)
                for _ in range(2):  # the forge redelivers
                    response = await client.post("/webhooks/forgejo", content=raw, headers=headers)
                    assert response.status_code in (200, 202)

            def bot_comments() -> list[str]:
                return [c.body for c in repo.issue_comments if c.user == "auto-review"]

            await deliver("@auto-review review", "maria", delivery="d1")
            await _wait_for(lambda: len(bot_comments()) == 1)
            await deliver("@auto-review review", "reader", delivery="d2")
            await _wait_for(lambda: len(bot_comments()) == 2)
            await deliver("@auto-review help", "reader", delivery="d3")
            await _wait_for(lambda: len(bot_comments()) == 3)
    store_jobs = [j for j in queue.list_jobs() if j.kind is JobKind.REVIEW]
    assert len(store_jobs) == 1
    assert store_jobs[0].force
    texts = bot_comments()
    assert "is queued" in texts[0]
    assert "needs write access" in texts[1]
    assert "@auto-review full review" in texts[2]
    store.close()

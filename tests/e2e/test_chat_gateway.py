"""Chat through the gateway: a signed Forgejo webhook -> chat job -> worker -> ChatService ->
reply on the fake forge. The review runner is absent, so queued reviews stay visible."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord, RepoRecord
from tests.fakes.forge_webhooks import (
    issue_comment_payload,
    review_comment_payload,
    webhook_headers,
)
from tests.fakes.llm import ScriptedModel, reply, scripted_llm_client

from auto_review.chat import ChatConfig, ChatService
from auto_review.gateway import GatewayDeps, create_app
from auto_review.gateway._poller import ChatPoller
from auto_review.hosts import ForgejoHost
from auto_review.jobs import JobKind, SqliteJobQueue
from auto_review.settings import LLMConfig, load_settings
from auto_review.store import Store

pytestmark = pytest.mark.anyio

SECRET = "w" * 40
FILES = {
    "src/app.py": "def sub(a, b):\n    return a - b\n",
    ".auto_review.yaml": "override_approvers: [olga]\n",
}
HEAD = {"src/app.py": "def sub(a, b):\n    return a + b\n"}


async def _no_sleep(_seconds: float) -> None:
    return None


async def _wait_for(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):  # a safety bound, not a timing assertion
        while not predicate():  # noqa: ASYNC110 - polling the fake forge's state
            await asyncio.sleep(0.02)


@dataclass
class Running:
    forge: FakeForge
    repo: RepoRecord
    pull: PullRecord
    queue: SqliteJobQueue
    client: httpx.AsyncClient
    poller: ChatPoller

    async def post(self, event_type: str, data: object, delivery: str) -> None:
        raw = json.dumps(data).encode()
        headers = webhook_headers(event_type, raw, SECRET, delivery)
        response = await self.client.post("/webhooks/forgejo", content=raw, headers=headers)
        assert response.status_code in (200, 202)

    async def comment(self, body: str, author: str, *, delivery: str) -> None:
        """``author`` comments on the PR; the forge delivers it twice (a redelivery)."""
        record = self.forge.comment("alice/demo", self.pull.number, body, author=author)
        data = issue_comment_payload(
            self.forge.state, self.repo, self.pull, record, action="created", sender=author,
            base=self.forge.url,
        )  # fmt: skip
        for _ in range(2):
            await self.post("issue_comment", data, delivery)

    def bot_comments(self) -> list[str]:
        return [c.body for c in self.repo.issue_comments if c.user == "auto-review"]


@contextlib.asynccontextmanager
async def _gateway(
    forge: FakeForge, tmp_path: Path, llm_config: LLMConfig
) -> AsyncIterator[Running]:
    forge.create_repo("alice/demo", FILES, bot_permission="admin")
    forge.push("alice/demo", "feature", HEAD)
    pull = forge.open_pull("alice/demo", head="feature", author="alice")
    repo = forge.repo("alice/demo")
    for login in ("maria", "olga", "reader"):
        forge.add_user(login)
    repo.collaborators["maria"] = "write"
    repo.collaborators["olga"] = "write"
    settings = load_settings(
        {
            "WEBHOOK_SECRET": SECRET,
            "FORGEJO_BASE_URL": forge.url,
            "AR_FORGEJO_TOKEN": forge.bot_token,
            "LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "AR_POLL_INTERVAL_SECS": "0",
        }
    ).settings
    store = Store.open(tmp_path / "state.sqlite3")
    queue = SqliteJobQueue(store)
    async with (
        httpx.AsyncClient(trust_env=False) as http,
        scripted_llm_client(llm_config) as (llm, _),
    ):
        host = ForgejoHost(http, base_url=forge.url, token=forge.bot_token, sleep=_no_sleep)
        chat = ChatService(
            host=host, store=store, config=ChatConfig.from_settings(settings), queue=queue, llm=llm
        )
        deps = GatewayDeps(
            store=store, host=host, runner=None, queue=queue, chat_runner=chat, run_poller=False
        )
        app = create_app(settings, deps)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.state.gateway.running(),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
        ):
            poller = app.state.gateway.poller
            yield Running(forge, repo, pull, queue, client, poller)
    store.close()


async def test_webhook_mentions_are_answered_once_through_the_gateway(
    fake_forge: FakeForge, tmp_path: Path, scripted_llm_config: LLMConfig
) -> None:
    async with _gateway(fake_forge, tmp_path, scripted_llm_config) as gw:
        await gw.comment("@auto-review review", "maria", delivery="d1")
        await _wait_for(lambda: len(gw.bot_comments()) == 1)
        await gw.comment("@auto-review review", "reader", delivery="d2")
        await _wait_for(lambda: len(gw.bot_comments()) == 2)
        await gw.comment("@auto-review help", "reader", delivery="d3")
        await _wait_for(lambda: len(gw.bot_comments()) == 3)
        reviews = [j for j in gw.queue.list_jobs() if j.kind is JobKind.REVIEW]
        texts = gw.bot_comments()
    assert len(reviews) == 1
    assert reviews[0].force
    assert "is queued" in texts[0]
    assert "needs write access" in texts[1]
    assert "@auto-review full review" in texts[2]


async def test_review_thread_question_via_webhook_is_answered_in_the_thread(
    fake_forge: FakeForge,
    tmp_path: Path,
    scripted_llm_config: LLMConfig,
    scripted_model: ScriptedModel,
) -> None:
    question = "@auto-review does this still subtract?"
    scripted_model.script(reply("No: line 2 adds."))
    async with _gateway(fake_forge, tmp_path, scripted_llm_config) as gw:
        gw.forge.state.create_review(
            gw.repo, gw.pull, user="maria", event="COMMENT", body="", commit_id="",
            comments=[{"path": "src/app.py", "body": question, "new_position": 2}],
        )  # fmt: skip
        data = review_comment_payload(
            gw.forge.state, gw.repo, gw.pull, content=question, sender="maria", base=gw.forge.url
        )
        await gw.post("pull_request_review_comment", data, "d-r1")

        def thread_replies() -> list[object]:
            return [
                c
                for r in gw.repo.reviews
                if r.user == "auto-review"
                for c in r.comments
                if "line 2 adds" in c.body
            ]

        await _wait_for(lambda: len(thread_replies()) == 1)
        [answer] = thread_replies()
        assert (answer.path, answer.new_line) == ("src/app.py", 2)
        assert gw.bot_comments() == []


async def test_poller_does_not_act_on_a_comment_edited_into_a_command(
    fake_forge: FakeForge, tmp_path: Path, scripted_llm_config: LLMConfig
) -> None:
    # Forgejo lets any writer edit anyone's comment, and the bot credits a command to the
    # comment's author: an edited comment speaks for someone who may not have written it. The
    # webhook never acts on edits; the poller, which reads the comment as it is now, must not
    # either. Here maria (write, no approver) turns olga's fresh remark into olga's override.
    reason = "sub is meant to add here: the caller negates b first, see the module docstring."
    async with _gateway(fake_forge, tmp_path, scripted_llm_config) as gw:
        head = gw.forge.state.head_sha(gw.repo, gw.pull)
        marker = f"<!-- auto-review:review head={head} -->"  # the bot reviewed this head
        gw.forge.state.create_review(
            gw.repo, gw.pull, user="auto-review", event="REQUEST_CHANGES",
            body=f"One error.\n\n{marker}", commit_id="", comments=[],
        )  # fmt: skip
        await gw.comment("@auto-review help", "maria", delivery="d1")  # the PR is now tracked
        await _wait_for(lambda: len(gw.bot_comments()) == 1)
        assert await gw.poller.run_once() == 0  # first sight seeds the cursors
        remark = gw.forge.comment(
            "alice/demo", gw.pull.number, "Thanks, reading it.", author="olga"
        )
        async with httpx.AsyncClient(trust_env=False) as forge_client:
            edited = await forge_client.patch(
                f"{gw.forge.url}/api/v1/repos/alice/demo/issues/comments/{remark.id}",
                json={"body": f"@auto-review approve {reason}"},
                headers={"Authorization": f"token {gw.forge.token_for('maria')}"},
            )
        assert edited.status_code == 200
        assert await gw.poller.run_once() == 0
        # Positive control: olga's own, unedited command is still found by the poller.
        gw.forge.comment(
            "alice/demo", gw.pull.number, f"@auto-review approve {reason}", author="olga"
        )
        assert await gw.poller.run_once() == 1
        await _wait_for(lambda: len(gw.bot_comments()) == 2)
        approvals = [
            r for r in gw.repo.reviews if r.user == "auto-review" and r.state == "APPROVED"
        ]
    assert len(approvals) == 1


async def test_a_command_in_a_comment_longer_than_a_webhook_carries_is_answered(
    fake_forge: FakeForge, tmp_path: Path, scripted_llm_config: LLMConfig
) -> None:
    # F63: the gateway keeps the first 64 Ki characters of a delivered comment, the chat job
    # read the whole comment back from the forge, and a command past the cut made the two
    # differ: the job ended skipped as if the comment had been edited, and nothing answered.
    log = "\n".join(f"trace line {n}: frame at 0x{n:08x}" for n in range(3000))
    assert len(log) > 70_000
    body = f"@auto-review help\n\nThe failing run's log:\n\n{log}\n\n@auto-review config\n"
    async with _gateway(fake_forge, tmp_path, scripted_llm_config) as gw:
        await gw.comment(body, "reader", delivery="d-long")
        await _wait_for(lambda: len(gw.bot_comments()) == 1)
        [answer] = gw.bot_comments()
        assert "@auto-review full review" in answer  # the help text

        def chat_jobs() -> list[tuple[str | None, str | None]]:
            return [(j.result, j.reason) for j in gw.queue.list_jobs() if j.kind is JobKind.CHAT]

        await _wait_for(lambda: chat_jobs() != [(None, None)])
        assert chat_jobs() == [("done", "answered")]


async def test_a_long_review_thread_comment_delivered_without_its_id_is_still_found(
    fake_forge: FakeForge, tmp_path: Path, scripted_llm_config: LLMConfig
) -> None:
    # F63: Forgejo's review-comment hook has no comment id, so the gateway finds the comment
    # by its text; it compared the forge's whole text with the 64 Ki characters it kept.
    log = "\n".join(f"trace line {n}: frame at 0x{n:08x}" for n in range(3000))
    text = f"@auto-review help\n\n{log}"
    async with _gateway(fake_forge, tmp_path, scripted_llm_config) as gw:
        gw.forge.state.create_review(
            gw.repo, gw.pull, user="reader", event="COMMENT", body="", commit_id="",
            comments=[{"path": "src/app.py", "body": text, "new_position": 2}],
        )  # fmt: skip
        data = review_comment_payload(
            gw.forge.state, gw.repo, gw.pull, content=text, sender="reader", base=gw.forge.url
        )
        await gw.post("pull_request_review_comment", data, "d-r-long")

        def thread_replies() -> list[str]:
            return [
                c.body
                for r in gw.repo.reviews
                if r.user == "auto-review"
                for c in r.comments
                if "@auto-review full review" in c.body
            ]

        await _wait_for(lambda: len(thread_replies()) == 1)

"""Webhooks of the fake forge look like Forgejo's: recorded payload shapes, headers, signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.fakes._threaded_uvicorn import ThreadedUvicorn
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord

RECORDED = Path(__file__).parents[1] / "data" / "webhooks" / "forgejo"
SECRET = "s" * 32


class Receiver:
    """A loopback endpoint that keeps every delivery it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []

        async def hook(request: Request) -> PlainTextResponse:
            self.got.append((dict(request.headers), await request.body()))
            return PlainTextResponse("ok")

        self.server = ThreadedUvicorn(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
        self.url = f"{self.server.url}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.server.start()
    yield r
    r.server.stop()


def _keys(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return set()
    out = set()
    for key, value in node.items():
        out.add(prefix + key)
        out |= _keys(value, f"{prefix}{key}.")
    return out


def _register(forge: FakeForge, url: str, events: list[str]) -> None:
    forge.repo("alice/demo").hooks.clear()
    forge.add_hook("alice/demo", url, secret=SECRET, events=events)


def test_pull_request_payload_has_every_field_of_the_recorded_forgejo_payload(
    fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    recorded = json.loads((RECORDED / "HookPullRequestUpdated.json").read_text())
    built = fake_forge.pull_request_payload("alice/demo", 1, action="synchronized")
    # The recorded capture trims head/base to their identifying fields; the rest must match.
    missing = _keys(recorded) - _keys(built)
    assert missing == set()
    assert built["action"] == "synchronized"
    assert built["pull_request"]["head"]["sha"] == fake_forge.repo("alice/demo").git.resolve(
        "refs/heads/feature"
    )


def test_opening_a_pull_delivers_a_signed_pull_request_webhook(
    fake_forge: FakeForge, forge_repo: PullRecord, receiver: Receiver
) -> None:
    _register(fake_forge, receiver.url, ["pull_request"])
    fake_forge.push("alice/demo", "second", {"x.txt": "x\n"})
    pull = fake_forge.open_pull("alice/demo", head="second", author="alice")
    assert len(receiver.got) == 1
    headers, body = receiver.got[0]
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-forgejo-event"] == "pull_request"
    assert headers["x-gitea-event"] == "pull_request"
    assert headers["x-forgejo-signature"] == digest
    assert headers["x-gitea-signature"] == digest
    assert headers["x-hub-signature-256"] == f"sha256={digest}"
    assert headers["x-forgejo-delivery"] == headers["x-gitea-delivery"]
    payload = json.loads(body)
    assert payload["action"] == "opened"
    assert payload["number"] == pull.number
    assert fake_forge.deliveries[-1].status == 200


def test_pushing_to_a_pull_head_delivers_synchronized(
    fake_forge: FakeForge, forge_repo: PullRecord, receiver: Receiver
) -> None:
    _register(fake_forge, receiver.url, ["pull_request"])
    sha = fake_forge.push("alice/demo", "feature", {"y.txt": "y\n"})
    headers, body = receiver.got[-1]
    assert headers["x-forgejo-event"] == "pull_request"
    assert headers["x-forgejo-event-type"] == "pull_request_sync"
    payload = json.loads(body)
    assert payload["action"] == "synchronized"
    assert payload["pull_request"]["head"]["sha"] == sha


def test_a_pull_comment_is_delivered_as_issue_comment_with_is_pull(
    fake_forge: FakeForge, forge_repo: PullRecord, receiver: Receiver
) -> None:
    _register(fake_forge, receiver.url, ["pull_request"])
    fake_forge.comment("alice/demo", 1, "@auto-review review", author="bob")
    headers, body = receiver.got[-1]
    assert headers["x-forgejo-event"] == "issue_comment"
    assert headers["x-forgejo-event-type"] == "pull_request_comment"
    payload = json.loads(body)
    assert payload["is_pull"] is True
    assert payload["comment"]["body"] == "@auto-review review"
    assert payload["comment"]["user"]["login"] == "bob"
    assert payload["issue"]["number"] == 1


def test_an_inline_review_comment_is_delivered_with_text_in_review_content(
    fake_forge: FakeForge, forge_repo: PullRecord, receiver: Receiver
) -> None:
    _register(fake_forge, receiver.url, ["pull_request"])
    fake_forge.review_comment_event("alice/demo", 1, "@auto-review explain", author="bob")
    headers, body = receiver.got[-1]
    assert headers["x-forgejo-event"] == "pull_request_comment"
    assert json.loads(body)["review"]["content"] == "@auto-review explain"


def test_hooks_not_subscribed_to_an_event_receive_nothing(
    fake_forge: FakeForge, forge_repo: PullRecord, receiver: Receiver
) -> None:
    _register(fake_forge, receiver.url, ["push"])
    fake_forge.comment("alice/demo", 1, "hello", author="bob")
    assert receiver.got == []
    _register(fake_forge, receiver.url, ["pull_request_comment"])  # positive control
    fake_forge.comment("alice/demo", 1, "hello", author="bob")
    assert len(receiver.got) == 1


def test_every_recorded_forgejo_payload_is_valid_json_with_action_or_ref() -> None:
    files = sorted(RECORDED.glob("*.json"))
    assert len(files) == 19
    for path in files:
        payload = json.loads(path.read_text())
        assert "action" in payload or "ref" in payload, path.name

from __future__ import annotations

import asyncio
import json

from tests.fakes.llm import ScriptedModel, invalid_json, reply, scripted_llm_client, server_error

from auto_review.review.findings import Finding, Severity
from auto_review.review.verify_model import verify_simple
from auto_review.settings import LLMConfig

LINES = ["def f(x):", "    return 1 / x", ""]


def _findings() -> list[Finding]:
    return [
        Finding("a.py", 2, 2, Severity.ERROR, "bug", "division by zero", "return 1 / x"),
        Finding("a.py", 1, 1, Severity.WARNING, "bug", "bad name", "def f(x):"),
    ]


async def _run(config: LLMConfig) -> object:
    async with scripted_llm_client(config) as (client, _sleeps):
        return await verify_simple(client, _findings(), lambda p: LINES, max_tokens=512)


def test_verify_simple_drops_rejected_findings_and_shows_code_around_them(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    verdicts = {"verdicts": [{"index": 0, "keep": True, "reason": "real"},
                             {"index": 1, "keep": False, "reason": "style"}]}  # fmt: skip
    scripted_model.script(reply(json.dumps(verdicts)))
    out = asyncio.run(_run(scripted_llm_config))
    assert [f.message for f in out.kept] == ["division by zero"]  # type: ignore[attr-defined]
    assert out.note is None  # type: ignore[attr-defined]
    [request] = scripted_model.chat_requests
    assert request.body["model"] == "scripted-cheap"
    assert "2:     return 1 / x" in request.text()
    assert "<<<UNTRUSTED finding_0" in request.text()


def test_verify_simple_keeps_unjudged_findings_and_says_so(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(reply(json.dumps({"verdicts": [{"index": 0, "keep": True,
                                                          "reason": "ok"}]})))  # fmt: skip
    out = asyncio.run(_run(scripted_llm_config))
    assert len(out.kept) == 2  # type: ignore[attr-defined]
    assert "no verdict on 1" in out.note  # type: ignore[attr-defined]


def test_verify_simple_fails_open_with_a_note_when_the_verifier_breaks(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(invalid_json(), invalid_json(), invalid_json())
    out = asyncio.run(_run(scripted_llm_config))
    assert len(out.kept) == 2  # type: ignore[attr-defined]
    assert "verifier failed" in out.note  # type: ignore[attr-defined]
    scripted_model.reset()
    scripted_model.respond_with(lambda _r: server_error(400, "schema rejected"))
    out = asyncio.run(_run(scripted_llm_config))
    assert "verifier failed" in out.note  # type: ignore[attr-defined]

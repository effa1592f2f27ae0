"""Structured output against the scripted model: parse, local repair, re-ask, give up."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field
from tests.fakes.llm import (
    ScriptedModel,
    fenced,
    invalid_json,
    reply,
    scripted_llm_client,
    truncated,
)
from tests.fakes.openai_strict import strict_schema_problems

from auto_review.errors import LLMOutputInvalid
from auto_review.llm import Structured, Tier, complete_structured
from auto_review.settings import LLMConfig

pytestmark = pytest.mark.anyio


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    line: int = Field(ge=1)
    severity: Literal["note", "warning", "error"]
    message: str
    suggestion: str | None = None


class ReviewOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str
    findings: list[Finding]
    walkthrough: str = ""


GOOD: dict[str, Any] = {
    "summary": "Adds a limiter.",
    "findings": [
        {
            "path": "a.py",
            "line": 3,
            "severity": "error",
            "message": "off by one",
            "suggestion": None,
        }
    ],
    "walkthrough": None,
}


async def _ask(config: LLMConfig) -> Structured[ReviewOut]:
    async with scripted_llm_client(config) as (client, _):
        return await complete_structured(
            client, Tier.REASONING, system="sys", user="review", output_model=ReviewOut
        )


async def test_structured_call_parses_a_valid_answer_on_first_attempt(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(reply(GOOD))
    result = await _ask(scripted_llm_config)
    assert result.value.findings[0].severity == "error"
    assert result.value.walkthrough == ""  # null -> default
    assert result.attempts == 1
    assert result.repaired_locally is False
    request = scripted_model.chat_requests[0]
    assert request.body["temperature"] == 0
    assert request.body["max_tokens"] == scripted_llm_config.max_output_tokens
    fmt = request.response_format
    assert fmt is not None
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "ReviewOut"
    assert strict_schema_problems(fmt["json_schema"]["schema"]) == []


async def test_structured_call_repairs_fenced_json_locally_without_reasking(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(fenced(GOOD))
    result = await _ask(scripted_llm_config)
    assert result.attempts == 1
    assert result.repaired_locally is True
    assert len(scripted_model.chat_requests) == 1


async def test_structured_call_reasks_with_the_validation_error_when_schema_is_violated(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    bad = {**GOOD, "findings": [{**GOOD["findings"][0], "line": 0}]}
    scripted_model.script(reply(bad), reply(GOOD))
    result = await _ask(scripted_llm_config)
    assert result.attempts == 2
    second = scripted_model.chat_requests[1]
    roles = [m["role"] for m in second.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert "findings.0.line" in second.messages[-1]["content"]
    assert "greater than or equal to 1" in second.messages[-1]["content"]


async def test_structured_call_reasks_when_the_answer_was_truncated(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(truncated(GOOD), reply(GOOD))
    result = await _ask(scripted_llm_config)
    assert result.attempts == 2
    assert "cut off at the token limit" in scripted_model.chat_requests[1].messages[-1]["content"]


async def test_structured_call_gives_up_with_output_invalid_after_three_attempts(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(invalid_json(), reply({"summary": 1}), reply("no json at all"))
    with pytest.raises(LLMOutputInvalid, match="after 3 attempt"):
        await _ask(scripted_llm_config)
    assert len(scripted_model.chat_requests) == 3


async def test_structured_call_takes_the_first_object_out_of_surrounding_prose(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(reply(f"Sure. {json.dumps(GOOD)} Hope this helps {{:"))
    result = await _ask(scripted_llm_config)
    assert result.repaired_locally is True
    assert result.value.summary == "Adds a limiter."
    assert len(scripted_model.chat_requests) == 1


async def test_structured_call_honours_a_smaller_attempt_budget_and_sums_usage(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(
        reply("nope", prompt_tokens=10, completion_tokens=1),
        reply("still nope", prompt_tokens=20, completion_tokens=2),
    )
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        with pytest.raises(LLMOutputInvalid, match="after 2 attempt"):
            await complete_structured(
                client,
                Tier.CHEAP,
                system="s",
                user="u",
                output_model=ReviewOut,
                max_attempts=2,
            )
        totals = client.ledger.totals()
    assert (totals.prompt_tokens, totals.completion_tokens) == (30, 3)
    assert totals.entries[0].tier is Tier.CHEAP


async def test_structured_call_reasks_an_answer_nested_too_deep_to_parse(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    # 2,000 nested arrays are 4 KB, a few hundred tokens, and deeper than Python's JSON parser
    # goes: as the whole answer, inside a fence, and after prose (the three ways it is read).
    deep = "[" * 2_000 + "]" * 2_000
    scripted_model.script(
        reply(deep),
        reply(f'```json\n{{"summary": {deep}}}\n```'),
        reply(f'Sure: {{"summary": {deep}}} done'),
    )
    with pytest.raises(LLMOutputInvalid, match="after 3 attempt"):
        await _ask(scripted_llm_config)
    assert len(scripted_model.chat_requests) == 3

"""strict_json_schema turns pydantic schemas into ones OpenAI strict mode accepts."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field
from tests.fakes.llm import ScriptedModel, reply, scripted_llm_client
from tests.fakes.openai_strict import strict_schema_problems

from auto_review.llm import (
    Tier,
    complete_structured,
    extract_json,
    response_format_for,
    strict_json_schema,
)
from auto_review.settings import LLMConfig


class Severity(StrEnum):
    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"


class Location(BaseModel):
    path: str = Field(min_length=1, max_length=500, description="Repository-relative path.")
    line_start: int = Field(ge=1)
    line_end: int | None = None


class Finding(BaseModel):
    location: Location = Field(description="Where the problem is.")
    severity: Severity
    category: Literal["bug", "security", "style"] = "bug"
    message: str
    evidence: str = ""
    related: list[Location] = Field(default_factory=list, max_length=5)
    fix: Location | None = None


class Review(BaseModel):
    summary: str = Field(pattern=r"^\S")
    findings: list[Finding]
    walkthrough: str | None = None
    confidence: float = Field(default=0.5, ge=0, le=1)
    tags: list[str] = []


MODELS: list[type[BaseModel]] = [Location, Finding, Review]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_raw_pydantic_schemas_break_strict_rules_as_a_control(model: type[BaseModel]) -> None:
    assert strict_schema_problems(model.model_json_schema())


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_strict_json_schema_output_passes_every_strict_rule(model: type[BaseModel]) -> None:
    strict = strict_json_schema(model.model_json_schema())
    assert strict_schema_problems(strict) == []


def test_strict_json_schema_makes_optional_properties_required_and_nullable() -> None:
    strict = strict_json_schema(Review.model_json_schema())
    assert strict["required"] == ["summary", "findings", "walkthrough", "confidence", "tags"]
    assert strict["additionalProperties"] is False
    assert strict["properties"]["confidence"]["type"] == ["number", "null"]
    assert "minimum=0" in strict["properties"]["confidence"]["description"]
    # Already nullable stays as it was (no double null).
    walkthrough = strict["properties"]["walkthrough"]["anyOf"]
    assert walkthrough.count({"type": "null"}) == 1
    finding = strict["$defs"]["Finding"]
    assert finding["properties"]["location"] == {
        "anyOf": [{"$ref": "#/$defs/Location"}],
        "description": "Where the problem is.",
    }
    assert finding["properties"]["category"]["anyOf"][-1] == {"type": "null"}


def test_strict_json_schema_does_not_change_its_input() -> None:
    raw = Review.model_json_schema()
    before = repr(raw)
    strict_json_schema(raw)
    assert repr(raw) == before


def test_strict_json_schema_refuses_free_form_maps_and_non_object_roots() -> None:
    class Loose(BaseModel):
        extra: dict[str, int]

    with pytest.raises(ValueError, match="free-form maps"):
        strict_json_schema(Loose.model_json_schema())
    with pytest.raises(ValueError, match="object at the root"):
        strict_json_schema({"type": "array", "items": {"type": "string"}})


def test_response_format_names_the_schema_and_asks_for_strict_mode() -> None:
    fmt = response_format_for(Review, name="Review output!")
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Review_output_"
    assert fmt["json_schema"]["strict"] is True
    fmt["json_schema"]["schema"]["properties"].clear()  # callers cannot corrupt the cache
    assert response_format_for(Review)["json_schema"]["schema"]["properties"]


@pytest.mark.parametrize(
    ("text", "expected", "repaired"),
    [
        ('{"a": 1}', {"a": 1}, False),
        ('  {"a": 1}\n', {"a": 1}, False),
        ('```json\n{"a": 1}\n```', {"a": 1}, True),
        ('```\n{"a": [1, 2]}\n```', {"a": [1, 2]}, True),
        ('Sure! Here it is: {"a": "}{"} and that is all.', {"a": "}{"}, True),
        ('{broken {"a": {"b": 2}} trailing', {"a": {"b": 2}}, True),
    ],
)
def test_extract_json_repairs_fences_and_surrounding_prose(
    text: str, expected: Any, repaired: bool
) -> None:
    assert extract_json(text) == (expected, repaired)


@pytest.mark.parametrize("text", ["", "no json here", '{"a": 1', "{'a': 1}"])
def test_extract_json_gives_up_on_text_without_a_complete_object(text: str) -> None:
    assert extract_json(text) is None


class Fix(BaseModel):
    replacement: str
    weight: int = 1


class WithOptionalNested(BaseModel):
    fix: Fix | None = Field(None, description="A suggested fix, if any.")
    primary: Fix = Field(description="The main fix.")


def test_strict_json_schema_keeps_descriptions_of_references() -> None:
    strict = strict_json_schema(WithOptionalNested.model_json_schema())
    assert strict_schema_problems(strict) == []
    assert strict["properties"]["primary"] == {
        "anyOf": [{"$ref": "#/$defs/Fix"}],
        "description": "The main fix.",
    }


@pytest.mark.anyio
async def test_injected_nulls_inside_an_optional_nested_model_fall_back_to_defaults(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    nested = {"replacement": "x", "weight": None}
    scripted_model.script(reply({"fix": nested, "primary": {**nested, "replacement": "y"}}))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        result = await complete_structured(
            client, Tier.CHEAP, system="s", user="u", output_model=WithOptionalNested
        )
    assert result.value.fix == Fix(replacement="x", weight=1)
    assert result.value.primary == Fix(replacement="y", weight=1)
    assert result.attempts == 1

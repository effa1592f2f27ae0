"""Structured output: a pydantic model in, a validated instance out, repaired when needed.

``complete_structured`` sends the model's JSON schema as ``response_format`` (type
``json_schema``, ``strict: true``), then turns the answer into an instance of the caller's
pydantic model in three steps:

1. local repair, free of charge: parse as is; else strip a ```json fence; else take the first
   complete JSON object in the text (prose before or after it is ignored);
2. validation by the pydantic model (the real contract: it may be stricter than the wire schema,
   e.g. ``min_length`` which strict mode cannot express);
3. on failure, re-ask: the bad answer goes back as the assistant turn and a user turn quotes the
   validation error. At most ``max_attempts`` (default 3) model calls; then ``LLMOutputInvalid``.

The wire schema, and the nulls strict mode forces into an answer, are ``_schema``'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from auto_review.errors import LLMOutputInvalid
from auto_review.llm._client import LLMClient
from auto_review.llm._schema import drop_injected_nulls, response_format_for
from auto_review.llm._types import Message, Tier, TokenUsage
from auto_review.logs import get_logger

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Structured",
    "complete_structured",
    "extract_json",
]

T = TypeVar("T", bound=BaseModel)

DEFAULT_MAX_ATTEMPTS = 3
_log = get_logger("llm")
_MAX_ECHO_CHARS = 12_000  # the bad answer sent back on a re-ask
_MAX_ERROR_CHARS = 1_500
_MAX_ERRORS_LISTED = 12
_MAX_OBJECT_STARTS = 64  # "{" positions tried when searching for the first complete object


@dataclass(frozen=True)
class Structured(Generic[T]):
    """A validated answer. ``usage`` sums every attempt; ``raw`` is the accepted answer's text."""

    value: T
    attempts: int
    repaired_locally: bool
    usage: TokenUsage
    raw: str


async def complete_structured(
    client: LLMClient,
    tier: Tier,
    *,
    system: str,
    user: str,
    output_model: type[T],
    schema_name: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_tokens: int | None = None,
    timeout_secs: float | None = None,
) -> Structured[T]:
    """Ask ``tier`` for an ``output_model`` instance; ``LLMOutputInvalid`` after the last try.

    Transport failures propagate as raised by ``LLMClient.chat`` (already retried there).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    original = output_model.model_json_schema()
    response_format = response_format_for(output_model, name=schema_name)
    messages = [Message("system", system), Message("user", user)]
    usage = TokenUsage()
    problem = "no attempt made"
    for attempt in range(1, max_attempts + 1):
        completion = await client.chat(
            tier,
            messages,
            response_format=response_format,
            max_tokens=max_tokens,
            timeout_secs=timeout_secs,
        )
        usage = usage + completion.usage
        try:
            value, repaired = _parse(completion.text, output_model, original)
        except _Invalid as exc:
            problem = exc.reason
            if completion.truncated:
                problem += " (the answer was cut off at the token limit: be more concise)"
            _log.info(
                "structured output invalid",
                tier=tier,
                model=completion.model,
                schema=output_model.__name__,
                attempt=attempt,
                problem=_clip(problem, 300),
            )
            messages = [
                *messages,
                Message("assistant", _clip(completion.text, _MAX_ECHO_CHARS)),
                Message("user", _reask(problem)),
            ]
            continue
        return Structured(
            value=value,
            attempts=attempt,
            repaired_locally=repaired,
            usage=usage,
            raw=completion.text,
        )
    raise LLMOutputInvalid(
        f"the {tier.value} model's output did not match {output_model.__name__} after "
        f"{max_attempts} attempt(s): {_clip(problem, 500)}"
    )


# -- local repair -------------------------------------------------------------------------------


def extract_json(text: str) -> tuple[Any, bool] | None:
    """``(value, repaired)`` from a model answer, or ``None`` when no JSON can be found.

    ``repaired`` is true when the answer was not valid JSON as a whole (fenced or surrounded by
    prose) and the value came from the first complete object inside it.
    """
    stripped = text.strip()
    # RecursionError: a few KB of nested brackets are deeper than the parser goes. That is a
    # malformed answer like any other (re-asked), not a crash of the review.
    try:
        return json.loads(stripped), False
    except (ValueError, RecursionError):
        pass
    unfenced = _strip_fence(stripped)
    if unfenced is not None:
        try:
            return json.loads(unfenced), True
        except (ValueError, RecursionError):
            pass
    found = _first_object(stripped)
    return None if found is None else (found, True)


def _strip_fence(text: str) -> str | None:
    start = text.find("```")
    if start < 0:
        return None
    newline = text.find("\n", start)
    if newline < 0:
        return None
    end = text.find("```", newline)
    return text[newline + 1 : end if end >= 0 else len(text)].strip()


def _first_object(text: str) -> Any:
    decoder = json.JSONDecoder()
    position = text.find("{")
    tries = 0
    while position >= 0 and tries < _MAX_OBJECT_STARTS:
        try:
            value, _ = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            tries += 1
            position = text.find("{", position + 1)
            continue
        return value
    return None


# -- validation -----------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse(text: str, output_model: type[T], original: Mapping[str, Any]) -> tuple[T, bool]:
    found = extract_json(text)
    if found is None:
        if not text.strip():
            raise _Invalid("the answer was empty")
        raise _Invalid("the answer is not valid JSON (a truncated or malformed object)")
    value, repaired = found
    if not isinstance(value, dict):
        raise _Invalid(f"the answer must be a JSON object, not {type(value).__name__}")
    cleaned = drop_injected_nulls(value, original, original.get("$defs", {}))
    try:
        return output_model.model_validate(cleaned), repaired
    except ValidationError as exc:
        raise _Invalid(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    lines = []
    errors = exc.errors(include_input=False, include_url=False)
    for error in errors[:_MAX_ERRORS_LISTED]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        lines.append(f"{where}: {error['msg']}")
    if len(errors) > _MAX_ERRORS_LISTED:
        lines.append(f"... and {len(errors) - _MAX_ERRORS_LISTED} more")
    return _clip("; ".join(lines), _MAX_ERROR_CHARS)


def _reask(problem: str) -> str:
    return (
        f"That output failed validation: {problem}. Return ONLY one JSON object that conforms "
        "to the schema: no prose, no markdown fences."
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [truncated]"

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

``strict_json_schema`` rewrites any JSON schema into the subset OpenAI strict mode accepts:
every object lists all its properties in ``required`` and sets ``additionalProperties: false``,
a property that was optional becomes nullable, ``oneOf`` becomes ``anyOf``, a ``$ref`` stands
alone, and keywords strict mode rejects (``default``, length/range/format constraints, ...) are
dropped from the wire schema and restated in the description. When the model answers ``null``
for a property that was optional but not nullable, the key is removed before validation so the
pydantic default applies. Shapes strict mode cannot express at all (free-form maps, tuples)
raise ``ValueError``: that is a bug in the output model, not a runtime condition.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from auto_review.errors import LLMOutputInvalid
from auto_review.llm._client import LLMClient
from auto_review.llm._types import Message, Tier, TokenUsage
from auto_review.logs import get_logger

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Structured",
    "complete_structured",
    "extract_json",
    "response_format_for",
    "strict_json_schema",
]

T = TypeVar("T", bound=BaseModel)

DEFAULT_MAX_ATTEMPTS = 3
_log = get_logger("llm")
_MAX_ECHO_CHARS = 12_000  # the bad answer sent back on a re-ask
_MAX_ERROR_CHARS = 1_500
_MAX_ERRORS_LISTED = 12
_MAX_OBJECT_STARTS = 64  # "{" positions tried when searching for the first complete object

# Keywords strict mode rejects; their meaning is kept in the description and enforced locally.
_UNSUPPORTED = (
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
_DROPPED = ("default", "title", "examples", "deprecated", "readOnly", "writeOnly")
_UNEXPRESSIBLE = ("patternProperties", "propertyNames", "prefixItems", "not", "if", "then")


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


def response_format_for(
    output_model: type[BaseModel], *, name: str | None = None
) -> dict[str, Any]:
    """The ``response_format`` body field asking for ``output_model`` in strict mode."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": _schema_name(name or output_model.__name__),
            "schema": _strict_schema_of(output_model),
            "strict": True,
        },
    }


@lru_cache(maxsize=256)
def _strict_schema_of_cached(output_model: type[BaseModel]) -> str:
    return json.dumps(strict_json_schema(output_model.model_json_schema()))


def _strict_schema_of(output_model: type[BaseModel]) -> dict[str, Any]:
    # Cached as text so no caller can mutate the shared copy.
    loaded: dict[str, Any] = json.loads(_strict_schema_of_cached(output_model))
    return loaded


# -- local repair -------------------------------------------------------------------------------


def extract_json(text: str) -> tuple[Any, bool] | None:
    """``(value, repaired)`` from a model answer, or ``None`` when no JSON can be found.

    ``repaired`` is true when the answer was not valid JSON as a whole (fenced or surrounded by
    prose) and the value came from the first complete object inside it.
    """
    stripped = text.strip()
    try:
        return json.loads(stripped), False
    except ValueError:
        pass
    unfenced = _strip_fence(stripped)
    if unfenced is not None:
        try:
            return json.loads(unfenced), True
        except ValueError:
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
        except ValueError:
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
    cleaned = _drop_injected_nulls(value, original, original.get("$defs", {}))
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


def _drop_injected_nulls(value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    """Remove ``null`` where strict mode forced a value the caller's model made optional."""
    schema = _resolve(schema, defs)
    if isinstance(value, dict) and "properties" not in schema:
        # ``Model | None``: follow the branch that describes an object.
        for branch in schema.get("anyOf", ()):
            resolved = _resolve(branch, defs) if isinstance(branch, Mapping) else {}
            if isinstance(resolved.get("properties"), dict):
                schema = resolved
                break
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", ()))
        out = {}
        for key, item in value.items():
            sub = schema["properties"].get(key)
            if sub is None:
                out[key] = item
                continue
            if item is None and key not in required and not _is_nullable(_resolve(sub, defs), defs):
                continue
            out[key] = _drop_injected_nulls(item, sub, defs)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_drop_injected_nulls(item, schema["items"], defs) for item in value]
    return value


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = str(schema["$ref"])
        target = defs.get(ref.rpartition("/")[2]) if ref.startswith("#/$defs/") else None
        if not isinstance(target, Mapping):
            return schema
        schema = target
        seen += 1
    # pydantic wraps a described reference as allOf: [{"$ref": ...}]
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
        return _resolve(all_of[0], defs)
    return schema


# -- strict-mode schema -------------------------------------------------------------------------


def strict_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that OpenAI strict mode accepts (see the module docstring)."""
    root = _strictify(copy.deepcopy(dict(schema)))
    if root.get("type") != "object":
        raise ValueError("strict mode needs an object at the root of the schema")
    defs = root.get("$defs")
    if isinstance(defs, dict):
        root["$defs"] = {name: _strictify(sub) for name, sub in defs.items()}
    return root


def _strictify(node: dict[str, Any]) -> dict[str, Any]:
    for key in _UNEXPRESSIBLE:
        if key in node:
            raise ValueError(f"strict mode cannot express the JSON-schema keyword {key!r}")
    if "$ref" in node:
        # Strict mode wants a reference to stand alone; a one-branch anyOf keeps its description.
        if isinstance(node.get("description"), str):
            return {"anyOf": [{"$ref": node["$ref"]}], "description": node["description"]}
        return {"$ref": node["$ref"]}
    all_of = node.pop("allOf", None)
    if all_of is not None:
        if len(all_of) != 1:
            raise ValueError("strict mode cannot express allOf with several schemas")
        merged = {**node, **all_of[0]}
        return _strictify(merged)
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    notes = [f"{key}={json.dumps(node.pop(key))}" for key in _UNSUPPORTED if key in node]
    for key in _DROPPED:
        node.pop(key, None)
    if notes:
        described = node.get("description", "")
        node["description"] = f"{described} ({', '.join(notes)})".strip()
    if "anyOf" in node:
        node["anyOf"] = [_strictify(dict(branch)) for branch in node["anyOf"]]
    if "object" in _types(node) or "properties" in node:
        _strict_object(node)
    if "items" in node:
        items = node["items"]
        if not isinstance(items, dict):
            raise ValueError("strict mode needs a single schema for array items")
        node["items"] = _strictify(items)
    return node


def _strict_object(node: dict[str, Any]) -> None:
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) or "properties" not in node:
        raise ValueError("strict mode cannot express free-form maps (objects without properties)")
    properties: dict[str, Any] = node.get("properties", {})
    required = set(node.get("required", ()))
    strict_properties = {}
    for name, sub in properties.items():
        strict = _strictify(dict(sub))
        if name not in required and not _is_nullable(strict, {}):
            strict = _nullable(strict)
        strict_properties[name] = strict
    node.setdefault("type", "object")
    node["properties"] = strict_properties
    node["required"] = list(strict_properties)
    node["additionalProperties"] = False


def _types(node: Mapping[str, Any]) -> list[str]:
    kind = node.get("type")
    return [kind] if isinstance(kind, str) else list(kind) if isinstance(kind, list) else []


def _is_nullable(node: Mapping[str, Any], defs: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "enum" in node and None in node["enum"]:
        return True
    branches = node.get("anyOf") or node.get("oneOf") or ()
    return any(isinstance(b, Mapping) and _is_nullable(_resolve(b, defs), defs) for b in branches)


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in node:
        return {**node, "anyOf": [*node["anyOf"], {"type": "null"}]}
    kind = node.get("type")
    if isinstance(kind, str) and "enum" not in node and "const" not in node:
        return {**node, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**node, "type": [*kind, "null"]}
    description = node.pop("description", None)
    wrapped: dict[str, Any] = {"anyOf": [node, {"type": "null"}]}
    if description is not None:
        wrapped["description"] = description
    return wrapped


_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def _schema_name(name: str) -> str:
    # OpenAI: ^[a-zA-Z0-9_-]{1,64}$ (the name is ours, never repository content).
    return (_NAME_CHARS.sub("_", name) or "Output")[:64]

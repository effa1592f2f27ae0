"""The schema sent as ``response_format``, in the subset OpenAI strict mode accepts.

``strict_json_schema`` rewrites any JSON schema into that subset: every object lists all its
properties in ``required`` and sets ``additionalProperties: false``, a property that was
optional becomes nullable, ``oneOf`` becomes ``anyOf``, a ``$ref`` stands alone, and keywords
strict mode rejects (``default``, length/range/format constraints, ...) are dropped from the wire
schema and restated in the description. When the model answers ``null`` for a property that was
optional but not nullable, ``drop_injected_nulls`` removes the key before validation so the
pydantic default applies. Shapes strict mode cannot express at all (free-form maps, tuples)
raise ``ValueError``: that is a bug in the output model, not a runtime condition.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

__all__ = ["drop_injected_nulls", "response_format_for", "strict_json_schema"]

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


def drop_injected_nulls(value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
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
            out[key] = drop_injected_nulls(item, sub, defs)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [drop_injected_nulls(item, schema["items"], defs) for item in value]
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

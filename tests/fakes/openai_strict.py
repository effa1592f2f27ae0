"""The rules OpenAI strict structured output imposes on a JSON schema, as a checker.

Encoded from the provider's documented constraints, taking the conservative reading where
providers differ (OpenAI, vLLM and Ollama grammars): a schema that passes here is accepted by
each of them. ``strict_schema_problems(schema)`` lists every violation; empty means valid.

Rules:
- the root is an object schema (not ``anyOf``);
- every object schema has ``properties``, lists every property in ``required`` and sets
  ``additionalProperties`` to ``false``;
- only these keywords appear: type, properties, required, additionalProperties, items, enum,
  const, anyOf, $ref, $defs, description, title;
- ``type`` names only string, number, integer, boolean, object, array or null;
- a ``$ref`` stands alone and points at ``#`` or an existing ``#/$defs/<name>``;
- at most 10 levels of object nesting, 5000 properties and 1000 enum values in total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["strict_schema_problems"]

_ALLOWED = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "description",
        "title",
    }
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_MAX_DEPTH = 10
_MAX_PROPERTIES = 5000
_MAX_ENUM_VALUES = 1000


def strict_schema_problems(schema: Mapping[str, Any]) -> list[str]:
    """Every way ``schema`` breaks the strict-mode rules (empty list: valid)."""
    defs = schema.get("$defs", {})
    checker = _Checker(defs if isinstance(defs, Mapping) else {})
    if not isinstance(defs, Mapping):
        checker.problems.append("$defs: must be an object")
    if "anyOf" in schema or schema.get("type") != "object":
        checker.problems.append("(root): must be an object schema, not anyOf or another type")
    checker.check(schema, "(root)", 0)
    for name, sub in checker.defs.items():
        checker.check_sub(sub, f"$defs.{name}", 0)
    if checker.properties > _MAX_PROPERTIES:
        checker.problems.append(f"more than {_MAX_PROPERTIES} properties in total")
    if checker.enum_values > _MAX_ENUM_VALUES:
        checker.problems.append(f"more than {_MAX_ENUM_VALUES} enum values in total")
    return checker.problems


class _Checker:
    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.problems: list[str] = []
        self.properties = 0
        self.enum_values = 0

    def check_sub(self, sub: Any, where: str, depth: int) -> None:
        if isinstance(sub, Mapping):
            self.check(sub, where, depth)
        else:
            self.problems.append(f"{where}: must be a schema object")

    def check(self, node: Mapping[str, Any], where: str, depth: int) -> None:
        for key in node:
            if key not in _ALLOWED:
                self.problems.append(f"{where}: keyword {key!r} is not supported in strict mode")
        if "$ref" in node:
            self._check_ref(node, where)
            return
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        for k in kinds:
            if k not in _TYPES:
                self.problems.append(f"{where}: type {k!r} is not supported")
        if "enum" in node:
            self.enum_values += len(node["enum"])
        if "object" in kinds or "properties" in node:
            self._check_object(node, where, depth)
        if "items" in node:
            self.check_sub(node["items"], f"{where}[]", depth)
        elif "array" in kinds:
            self.problems.append(f"{where}: an array needs items")
        for index, branch in enumerate(node.get("anyOf", ())):
            self.check_sub(branch, f"{where}.anyOf[{index}]", depth)

    def _check_ref(self, node: Mapping[str, Any], where: str) -> None:
        if len(node) != 1:
            self.problems.append(f"{where}: $ref must stand alone")
        ref = str(node["$ref"])
        name = ref.removeprefix("#/$defs/")
        if ref != "#" and (not ref.startswith("#/$defs/") or name not in self.defs):
            self.problems.append(f"{where}: $ref {ref!r} does not resolve")

    def _check_object(self, node: Mapping[str, Any], where: str, depth: int) -> None:
        if depth >= _MAX_DEPTH:
            self.problems.append(f"{where}: nested deeper than {_MAX_DEPTH} objects")
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            self.problems.append(f"{where}: an object needs properties")
            properties = {}
        if node.get("additionalProperties") is not False:
            self.problems.append(f"{where}: additionalProperties must be false")
        required = node.get("required")
        if not isinstance(required, list) or set(required) != set(properties):
            self.problems.append(f"{where}: required must list every property")
        self.properties += len(properties)
        for name, sub in properties.items():
            self.check_sub(sub, f"{where}.{name}", depth + 1)

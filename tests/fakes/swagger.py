"""Checks of JSON against the Gitea swagger spec in tests/data (used by contract tests).

``conforms`` is deliberately strict about fields (a field the schema does not define is a
problem) and lenient about ``null`` (Gitea marshals nil pointers and slices as null).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.fakes.forge import spec_path
from tests.fakes.forge_routes import RouteSpec

__all__ = [
    "ERROR_DEFINITION",
    "SPEC_FILE",
    "conforms",
    "load_spec",
    "operation",
    "request_schema",
    "resolve",
    "response_schema",
]

SPEC_FILE = Path(__file__).parents[1] / "data" / "forge-api" / "gitea-swagger.v1.json"
# Answers whose body the spec leaves undescribed get Gitea's APIError shape.
ERROR_DEFINITION = "APIError"


@cache
def _load() -> str:
    return SPEC_FILE.read_text()


def load_spec() -> dict[str, Any]:
    """A fresh copy of the parsed spec."""
    spec: dict[str, Any] = json.loads(_load())
    return spec


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with ``$ref`` links followed."""
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = spec[kind][name]
    return node


def operation(spec: dict[str, Any], route: RouteSpec) -> dict[str, Any]:
    """The spec's operation object for a fake route."""
    op: dict[str, Any] = spec["paths"][spec_path(route)][route.method.lower()]
    return op


def response_schema(spec: dict[str, Any], route: RouteSpec, status: int) -> dict[str, Any] | None:
    """The schema of the answer with ``status``; APIError for undescribed error answers."""
    response = operation(spec, route)["responses"].get(str(status))
    if response is None:
        return None
    response = resolve(spec, response)
    if "schema" in response:
        schema: dict[str, Any] = response["schema"]
        return schema
    if status >= 400:
        return {"$ref": f"#/definitions/{ERROR_DEFINITION}"}
    return None


JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def conforms(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Problems with ``value`` under ``schema``; fields the schema does not define are problems."""
    if value is None:
        return []  # Gitea marshals nil pointers and slices as null
    schema = resolve(spec, schema)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind is None:
        return []
    expected = JSON_TYPES[kind]
    if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
        return [f"{where}: {type(value).__name__} where the spec says {kind}"]
    problems: list[str] = []
    if kind == "array":
        for i, item in enumerate(value):
            problems += conforms(spec, schema.get("items", {}), item, f"{where}[{i}]")
    elif kind == "object" and "properties" in schema:
        problems += [
            f"{where}.{k}: required but missing"
            for k in schema.get("required", [])
            if k not in value
        ]
        for key, item in value.items():
            if key not in schema["properties"]:
                problems.append(f"{where}.{key}: not defined by the spec")
            else:
                problems += conforms(spec, schema["properties"][key], item, f"{where}.{key}")
    return problems


def request_schema(spec: dict[str, Any], route: RouteSpec) -> dict[str, Any] | None:
    """The schema of the operation's JSON body parameter, if it has one."""
    for param in operation(spec, route).get("parameters", []):
        if param.get("in") == "body":
            schema: dict[str, Any] = param["schema"]
            return schema
    return None

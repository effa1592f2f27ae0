"""Definitions (functions, methods, types) in source files, via tree-sitter, for 12 languages.

Runs inside the ``analyze`` job sandbox (``symbols_task`` is called by ``_analysis``): it parses
repository files, which are hostile input to a C parser. Files are read with ``read_beneath``
(no symlinks, capped size). For each file it returns the definitions that enclose the given
changed lines, innermost last, as ``{kind, name, start, end, header}`` (1-based, inclusive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import tree_sitter as ts
import tree_sitter_c
import tree_sitter_c_sharp
import tree_sitter_cpp
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_kotlin
import tree_sitter_php
import tree_sitter_python
import tree_sitter_ruby
import tree_sitter_rust
import tree_sitter_typescript

from auto_review.review._fsconfine import read_beneath

__all__ = ["LANGUAGES", "definitions_task", "enclosing_definitions", "language_for", "symbols_task"]

_MAX_FILE_BYTES = 1024 * 1024
_MAX_FILES = 200
_MAX_HEADER = 200

_LOADERS: dict[str, Callable[[], Any]] = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
    "go": tree_sitter_go.language,
    "rust": tree_sitter_rust.language,
    "java": tree_sitter_java.language,
    "c": tree_sitter_c.language,
    "cpp": tree_sitter_cpp.language,
    "csharp": tree_sitter_c_sharp.language,
    "ruby": tree_sitter_ruby.language,
    "php": tree_sitter_php.language_php,
    "kotlin": tree_sitter_kotlin.language,
}
LANGUAGES = tuple(_LOADERS)

_EXTENSIONS = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".kt": "kotlin", ".kts": "kotlin",
}  # fmt: skip

_JS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "method_definition": "method",
}
_DEFINITIONS: dict[str, dict[str, str]] = {
    "python": {"function_definition": "function", "class_definition": "class"},
    "javascript": _JS,
    "typescript": {
        **_JS,
        "abstract_class_declaration": "class",
        "interface_declaration": "interface",
        "enum_declaration": "enum",
        "type_alias_declaration": "type",
    },
    "go": {"function_declaration": "function", "method_declaration": "method", "type_spec": "type"},
    "rust": {
        "function_item": "function",
        "struct_item": "struct",
        "enum_item": "enum",
        "trait_item": "trait",
        "impl_item": "impl",
        "mod_item": "module",
    },
    "java": {
        "class_declaration": "class",
        "interface_declaration": "interface",
        "enum_declaration": "enum",
        "record_declaration": "record",
        "method_declaration": "method",
        "constructor_declaration": "constructor",
    },
    "c": {"function_definition": "function", "struct_specifier": "struct"},
    "cpp": {
        "function_definition": "function",
        "class_specifier": "class",
        "struct_specifier": "struct",
        "namespace_definition": "namespace",
    },
    "csharp": {
        "class_declaration": "class",
        "struct_declaration": "struct",
        "interface_declaration": "interface",
        "record_declaration": "record",
        "enum_declaration": "enum",
        "method_declaration": "method",
        "constructor_declaration": "constructor",
        "namespace_declaration": "namespace",
    },
    "ruby": {
        "method": "method",
        "singleton_method": "method",
        "class": "class",
        "module": "module",
    },
    "php": {
        "function_definition": "function",
        "class_declaration": "class",
        "interface_declaration": "interface",
        "trait_declaration": "trait",
        "method_declaration": "method",
    },
    "kotlin": {
        "function_declaration": "function",
        "class_declaration": "class",
        "object_declaration": "object",
    },
}
_DEFINITIONS["tsx"] = _DEFINITIONS["typescript"]
_NAME_TYPES = ("identifier", "name", "constant", "type_identifier", "field_identifier")


def language_for(path: str) -> str | None:
    return _EXTENSIONS.get(PurePosixPath(path).suffix.lower())


@cache
def _parser(language: str) -> ts.Parser:
    return ts.Parser(ts.Language(_LOADERS[language]()))


def _name(node: ts.Node) -> str:
    for field in ("name", "declarator", "type"):
        child = node.child_by_field_name(field)
        while child is not None and child.child_by_field_name("declarator") is not None:
            child = child.child_by_field_name("declarator")  # C: int *f(int) -> f
        if child is not None and child.text is not None:
            return child.text.decode("utf-8", "replace")[:100]
    for child in node.named_children:
        if child.type.endswith(_NAME_TYPES) and child.text is not None:
            return child.text.decode("utf-8", "replace")[:100]
    return "?"


def _definitions(root: ts.Node, kinds: dict[str, str]) -> Iterator[ts.Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in kinds:
            yield node
        stack.extend(reversed(node.named_children))


def enclosing_definitions(
    language: str, source: bytes, lines: frozenset[int]
) -> list[dict[str, Any]]:
    """Definitions containing at least one of ``lines``, outermost first."""
    kinds = _DEFINITIONS[language]
    tree = _parser(language).parse(source)
    text_lines = source.split(b"\n")
    found: list[dict[str, Any]] = []
    for node in _definitions(tree.root_node, kinds):
        start, end = node.start_point[0] + 1, node.end_point[0] + 1
        if not any(start <= n <= end for n in lines):
            continue
        header = text_lines[start - 1].decode("utf-8", "replace").strip()[:_MAX_HEADER]
        found.append(
            {
                "kind": kinds[node.type],
                "name": _name(node),
                "start": start,
                "end": end,
                "header": header,
            }
        )
    found.sort(key=lambda d: (d["start"], -d["end"]))
    return found


def symbols_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Analysis task: ``{root, files: {path: [changed lines]}}`` -> ``{path: [definitions]}``."""
    root = Path(str(payload["root"]))
    result: dict[str, Any] = {}
    for path, changed in list(dict(payload["files"]).items())[:_MAX_FILES]:
        language = language_for(str(path))
        if language is None:
            continue
        read = read_beneath(root, str(path), max_bytes=_MAX_FILE_BYTES)
        if read is None or read.truncated:
            continue
        lines = frozenset(int(n) for n in changed)
        result[str(path)] = enclosing_definitions(language, read.data, lines)
    return result


_MAX_DEFINITION_TEXT = 1500


def definitions_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Analysis task: ``{root, files: [path]}`` -> ``{path: [{kind, name, start, end, text}]}``."""
    root = Path(str(payload["root"]))
    result: dict[str, Any] = {}
    for path in list(payload["files"])[:_MAX_FILES]:
        language = language_for(str(path))
        if language is None:
            continue
        read = read_beneath(root, str(path), max_bytes=_MAX_FILE_BYTES)
        if read is None or read.truncated:
            continue
        kinds = _DEFINITIONS[language]
        tree = _parser(language).parse(read.data)
        found = []
        for node in _definitions(tree.root_node, kinds):
            if kinds[node.type] in ("class", "module", "namespace", "impl", "object"):
                continue  # containers: their methods are indexed one by one
            text = read.data[node.start_byte : node.end_byte].decode("utf-8", "replace")
            found.append(
                {
                    "kind": kinds[node.type],
                    "name": _name(node),
                    "start": node.start_point[0] + 1,
                    "end": node.end_point[0] + 1,
                    "text": text[:_MAX_DEFINITION_TEXT],
                }
            )
        result[str(path)] = found
    return result

"""docs/*.md mention only commands and endpoints that exist.

- Every ``auto-review ...`` (or ``python -m auto_review ...``) command line in code (inline spans
  and fenced blocks) must walk the real typer app: a command-like word after a group must name
  one of its commands, and every ``--option`` must be an option of the command reached (up to a
  bare ``--``, after which the sandboxed command's argv follows).
- Every ``METHOD /path`` and every code span that is only a URL path must be a route of the
  gateway with that method. Upstream APIs are exempt by prefix: ``/api/`` (the forge's REST API)
  and ``/v1/`` (the OpenAI-compatible model API); so are host filesystem paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main
from tests.unit.cli._cli import subcommands
from tests.unit.gateway.support import MemoryHost, settings

from auto_review.cli.main import app
from auto_review.gateway import GatewayDeps, create_app
from auto_review.store import MEMORY, Store

DOCS = Path(__file__).resolve().parents[2] / "docs"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_SPAN = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(
    r"(?:(?<=^)|(?<=[\s(`]))(?:auto-review|python -m auto_review)((?: +[^\s`|]+)*)"
)
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")
_ENDPOINT = re.compile(r"\b(GET|POST|PUT|DELETE|PATCH|HEAD) (/[A-Za-z0-9_./{}-]*)")
_PATH_ONLY = re.compile(r"^(/[a-z][a-z0-9_-]*)+$")
_UPSTREAM = ("/api", "/v1")
_FILESYSTEM = frozenset(
    {"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt"}
    | {"opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var", "oldroot"}
)


@dataclass(frozen=True)
class Mention:
    doc: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc}: {self.text!r}"


def _docs() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _code_texts(markdown: str) -> list[str]:
    """Fenced blocks, and inline code spans of the prose outside them."""
    blocks = [m.group(1) for m in _FENCE.finditer(markdown)]
    prose = _FENCE.sub("", markdown)
    return blocks + [m.group(1) for m in _SPAN.finditer(prose)]


def _command_mentions() -> list[Mention]:
    found = []
    for doc in _docs():
        for text in _code_texts(doc.read_text(encoding="utf-8")):
            for line in text.splitlines():
                for match in _COMMAND.finditer(line):
                    found.append(Mention(doc.name, match.group(0).strip()))
    return found


def _endpoint_mentions() -> list[tuple[Mention, str, str]]:
    """(mention, method or '', path) for every endpoint-looking reference in the docs."""
    found = []
    for doc in _docs():
        markdown = doc.read_text(encoding="utf-8")
        for match in _ENDPOINT.finditer(markdown):
            found.append((Mention(doc.name, match.group(0)), match.group(1), match.group(2)))
        for span in _SPAN.findall(_FENCE.sub("", markdown)):
            if _PATH_ONLY.match(span):
                found.append((Mention(doc.name, span), "", span))
    return [
        (mention, method, path)
        for mention, method, path in found
        if path.split("/")[1] not in _FILESYSTEM and f"/{path.split('/')[1]}" not in _UPSTREAM
    ]


def _options(command: Any) -> set[str]:
    names = {"--help"}
    for param in getattr(command, "params", ()):
        names.update(n for n in (*param.opts, *param.secondary_opts) if n.startswith("--"))
    return names


def _problem(words: list[str], command: Any) -> str | None:
    """Why ``words`` (after the program name) is not a command line of ``command``, or None.

    Walks groups by name; at a command, every ``--option`` up to a bare ``--`` must be one of
    its options. Placeholders, arguments and ``...`` are not checked.
    """
    at_command = False
    for raw in words:
        if raw == "--":
            return None  # what follows is the sandboxed command's own argv
        word = raw.strip("[]()|.,;").split("=", 1)[0]
        if word.startswith("--"):
            if word not in _options(command):
                return f"{word!r} is not an option of {command.name!r}"
            continue
        subs = subcommands(command)
        if at_command or not subs or not _WORD.match(word):
            at_command = True  # an argument or a placeholder: only options are checked now
            continue
        sub = subs.get(word)
        if sub is None:
            return f"{word!r} is not a command of {command.name!r}"
        command = sub
    return None


def _routes() -> dict[str, frozenset[str]]:
    deps = GatewayDeps(store=Store.open(MEMORY), host=MemoryHost(), runner=None)  # type: ignore[arg-type]
    gateway = create_app(settings(), deps)
    return {route.path: frozenset(route.methods or ()) for route in gateway.routes}  # type: ignore[attr-defined]


def test_docs_mention_commands_and_endpoints() -> None:
    assert len(_command_mentions()) > 30
    assert len(_endpoint_mentions()) > 10


def test_every_command_line_in_docs_exists_in_the_cli() -> None:
    root = typer.main.get_command(app)
    bad = []
    for mention in _command_mentions():
        words = mention.text.split()[1:] if mention.text.startswith("auto-review") else []
        if mention.text.startswith("python -m auto_review"):
            words = mention.text.split()[3:]
        problem = _problem(words, root)
        if problem:
            bad.append(f"{mention}: {problem}")
    assert bad == [], "docs mention commands the CLI does not have:\n" + "\n".join(bad)


def test_every_endpoint_in_docs_is_a_gateway_route() -> None:
    routes = _routes()
    bad = [
        str(mention)
        for mention, method, path in _endpoint_mentions()
        if path not in routes or (method and method not in routes[path])
    ]
    assert bad == [], "docs mention endpoints the gateway does not serve:\n" + "\n".join(bad)


def test_command_walk_refuses_an_unknown_subcommand_positive_control() -> None:
    root = typer.main.get_command(app)
    assert _problem(["jobs", "list", "--json"], root) is None
    assert _problem(["jobs", "explode"], root) is not None
    assert _problem(["teleport"], root) is not None
    assert _problem(["sandbox", "run", "--", "true", "--whatever"], root) is None
    assert _problem(["jobs", "list", "--no-such-flag"], root) is not None
    assert _problem(["history", "purge", "--older-than-days", "3"], root) is None


def test_endpoint_scan_finds_a_route_the_gateway_lacks_positive_control() -> None:
    routes = _routes()
    assert "GET" in routes["/healthz"]
    assert "/status" not in routes
    assert _ENDPOINT.search("call GET /status now")

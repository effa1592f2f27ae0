"""Make model-written (or PR-controlled) text inert before the bot posts it on the forge.

The bot posts as an account with write access, and Forgejo acts on what such an account
writes: an ``@user`` or ``@org/team`` notifies them; a closing keyword with an issue reference
(``Fixes #1``, ``closes owner/repo#2``, ``resolves https://forge/o/r/issues/3``) in a PR
comment or inline review comment closes that issue when the PR is merged, because the bot may
close it; any reference lands in the referenced issue's timeline. Markdown images and raw HTML
``<img>`` load when a maintainer opens the PR, so a URL can carry repository content to
whoever serves it; HTML comments could forge the bot's own hidden markers. Prompt injection
lets a PR author steer every one of these through the model.

``defang`` breaks each construct with a zero-width space (invisible when rendered, so the
text still reads the same) rather than deleting it. Code meant to be applied (suggestion
blocks) is not passed through here: the forge neither mentions nor references from code, and a
zero-width space there would end up in the author's file; such code goes in a fence it cannot
close (``fence_for``) instead.
"""

from __future__ import annotations

import re2

__all__ = ["ZWSP", "code_span", "defang", "fence_for"]

ZWSP = "\u200b"

# google-re2's ``sub`` mangles non-ASCII replacement strings, hence the callables below.
_TAG_START = re2.compile(r"<([A-Za-z/!?])")  # an HTML tag, closing tag, comment or PI
_SHORT_REF = re2.compile(r"([#!])([0-9])")  # #12, owner/repo#12, !12 (Forgejo's PR form)
_URL_REF = re2.compile(r"/(issues|pulls)/([0-9])")  # full issue and PR URLs


def defang(text: str) -> str:
    """``text`` with no live mention, issue reference, image, HTML tag or HTML comment."""
    text = text.replace("<!--", "&lt;!--").replace("-->", "--&gt;")
    text = _TAG_START.sub(lambda m: f"<{ZWSP}{m.group(1)}", text)
    text = text.replace("![", f"!{ZWSP}[")
    text = text.replace("@", f"@{ZWSP}")
    text = _SHORT_REF.sub(lambda m: f"{m.group(1)}{ZWSP}{m.group(2)}", text)
    text = _URL_REF.sub(lambda m: f"/{m.group(1)}/{ZWSP}{m.group(2)}", text)
    return str(text)


def code_span(text: str, *, limit: int = 300) -> str:
    """Untrusted text (a file name) as inline code that cannot leave its backticks."""
    return "`" + defang(text.replace("`", "'").replace("\n", " ")[:limit]) + "`"


def fence_for(text: str, *, char: str = "`") -> str:
    """A fence longer than any run of ``char`` inside ``text``, so the text cannot close it."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == char else 0
        longest = max(longest, run)
    return char * max(3, longest + 1)

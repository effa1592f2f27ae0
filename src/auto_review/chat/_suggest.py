"""``autofix``, ``docstring`` and ``tests``: model-proposed changes posted as suggestion blocks.

The bot never pushes commits. Each proposal becomes an inline review comment on a line the
diff shows (new side), holding a fenced ``suggestion`` block that the author may apply in the
forge's UI. Proposals for paths outside the diff, lines the diff does not show, empty or
unchanged replacements are dropped; at most ``MAX_SUGGESTIONS`` are posted. For ``tests`` the
code is inserted after the chosen line of a changed test file (the suggestion keeps that line);
tests with no such anchor are shown in the reply instead. The model's prose (reasons, paths) is
defanged (``review/defang.py``); its code stays verbatim, in a fence it cannot close.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from auto_review.chat._assist import gather_diff
from auto_review.chat._context import ChatDeps, Turn, chat_tier
from auto_review.chat._parser import CommandKind
from auto_review.chat._replies import ReviewPost, Turnout, fence_for
from auto_review.errors import LLMOutputInvalid
from auto_review.hosts import InlineComment, ReviewEvent
from auto_review.llm import UNTRUSTED_DATA_RULE, PromptBuilder, complete_structured
from auto_review.review.defang import code_span, defang
from auto_review.review.diff import FileDiff, parse_diff

__all__ = ["MAX_SUGGESTIONS", "handle_suggestions"]

MAX_SUGGESTIONS = 5
_MAX_REASON_CHARS = 1000
_MAX_CODE_CHARS = 4000


class _Proposal(BaseModel):
    path: str = Field(description="A file path exactly as it appears in the diff.")
    line: int = Field(description="A new-file line number shown in the diff.")
    code: str = Field(description="Replacement text for that line (tests: code to add after it).")
    reason: str = Field(description="One or two sentences: why.")


class _Proposals(BaseModel):
    proposals: list[_Proposal] = Field(description=f"At most {MAX_SUGGESTIONS} items.")


_TASKS = {
    CommandKind.AUTOFIX: (
        "Propose fixes for clear defects in the added or changed lines of this pull request. "
        "Each proposal replaces exactly one new-file line (`line`) with `code`, which may span "
        "several lines. Only fix real problems; return an empty list when there are none."
    ),
    CommandKind.DOCSTRING: (
        "Propose docstrings or doc comments for functions, methods and classes that this pull "
        "request adds or changes and that lack one. Each proposal replaces exactly one new-file "
        "line (`line`, usually the definition line) with `code`: that line unchanged plus the "
        "documentation placed where the language expects it."
    ),
    CommandKind.TESTS: (
        "Propose unit tests for the behaviour this pull request adds or changes, in the style "
        "of the repository's tests. If the diff changes a test file, set `path` to it and `line` "
        "to a new-file line of it after which the test code (`code`) should be inserted. "
        "Otherwise set `path` to the file under test and `line` to 0."
    ),
}
_SYSTEM = (
    "You are auto-review, proposing code changes as review suggestions. Cite only paths and "
    "new-file line numbers that the diff shows. Keep each proposal small and self-contained."
)


async def handle_suggestions(deps: ChatDeps, turn: Turn) -> Turnout:
    """Model-proposed fixes, docstrings or tests as suggestion blocks on diff lines."""
    kind = turn.command.kind
    pr = turn.pr
    if not pr.is_open or pr.merged:
        return Turnout("This pull request is closed; I only suggest changes on open ones.")
    if deps.llm is None:
        return Turnout("Suggestions need a model, and none is configured for chat here.")
    diff = await gather_diff(deps, turn)
    files = {fd.path: fd for fd in parse_diff(diff) if not fd.binary and fd.status != "removed"}
    if not files:
        return Turnout("The diff has no changed text files to suggest anything for.")
    prompt = (
        PromptBuilder()
        .text(_TASKS[kind])
        .untrusted("diff", diff)
        .untrusted("request", turn.command.argument or "(no extra detail)")
        .build()
    )
    try:
        result = await complete_structured(
            deps.llm,
            chat_tier(deps.llm),
            system=f"{_SYSTEM}\n\n{UNTRUSTED_DATA_RULE}",
            user=prompt.text,
            output_model=_Proposals,
            schema_name="suggestions",
        )
    except LLMOutputInvalid:
        return Turnout("The model did not return well-formed suggestions; please try again later.")
    proposals = result.value.proposals
    comments: list[InlineComment] = []
    loose: list[_Proposal] = []
    for proposal in proposals:
        if len(comments) >= MAX_SUGGESTIONS:
            break
        comment = _anchor(kind, proposal, files)
        if comment is not None:
            comments.append(comment)
        elif kind is CommandKind.TESTS and proposal.code.strip() and len(loose) < MAX_SUGGESTIONS:
            loose.append(proposal)
    label = {CommandKind.AUTOFIX: "fix", CommandKind.DOCSTRING: "docstring"}.get(kind, "test")
    if not comments and not loose:
        if proposals:
            return Turnout(
                f"The model proposed {len(proposals)} {label}(s), but none pointed at a line of "
                "this diff, so I posted nothing."
            )
        return Turnout(f"I found nothing to suggest ({label}s).")
    text = [
        f"I posted {len(comments)} {label} suggestion(s) as review comments on the diff: apply "
        "the ones you want from the Files tab. I never push commits."
    ]
    for proposal in loose:
        fence = fence_for(proposal.code)
        reason = defang(proposal.reason[:_MAX_REASON_CHARS])
        text.append(
            f"\n**Test for {code_span(proposal.path)}**: {reason}\n\n"
            f"{fence}\n{proposal.code[:_MAX_CODE_CHARS]}\n{fence}"
        )
    review = None
    if comments:
        review = ReviewPost(
            ReviewEvent.COMMENT,
            f"Suggestions ({kind.value}) requested by {turn.author}.",
            tuple(comments),
        )
    return Turnout("\n".join(text), review=review)


def _anchor(
    kind: CommandKind, proposal: _Proposal, files: dict[str, FileDiff]
) -> InlineComment | None:
    """The inline comment for ``proposal``, or None when it does not fit the diff."""
    fd = files.get(proposal.path)
    code = proposal.code.rstrip("\n")
    if fd is None or proposal.line not in fd.commentable or not code.strip():
        return None
    if kind is CommandKind.TESTS and "test" not in fd.path.lower():
        return None  # tests are inserted into test files only, never into the code under test
    if len(code) > _MAX_CODE_CHARS:
        return None
    original = fd.new_text.get(proposal.line, "")
    replacement = f"{original}\n{code}" if kind is CommandKind.TESTS else code
    if replacement == original:
        return None
    fence = fence_for(replacement)
    body = (
        f"{defang(proposal.reason.strip()[:_MAX_REASON_CHARS])}\n\n"
        f"{fence}suggestion\n{replacement}\n{fence}"
    )
    return InlineComment(path=fd.path, body=body, new_line=proposal.line)

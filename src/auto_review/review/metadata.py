"""The PR metadata check (opt-in with ``pr_metadata_check`` in the base config).

Deterministic rules first: a title over 72 characters fails, and so does an empty description
when ``checks.body_required`` holds. Otherwise the cheap tier judges the title and description
against fixed criteria plus the repository's ``additional_rules`` (base-branch text, trusted);
the title and description themselves are framed as untrusted data. A model failure gives no
verdict (never a failure): the summary says the check could not run.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from auto_review.errors import LLMError
from auto_review.llm import UNTRUSTED_DATA_RULE, LLMClient, PromptBuilder, Tier, complete_structured
from auto_review.review.config import MetadataCheck
from auto_review.review.prompts import cap_text

__all__ = ["MAX_TITLE", "MetadataResult", "check_metadata"]

MAX_TITLE = 72

_SYSTEM = (
    "You check the title and description of a pull request before merge. Pass them when: the "
    "title is a short imperative summary (or a conventional-commit title such as 'fix(db): "
    "close cursors'); the description says what changes and why, and is more than a copy of "
    "the title. Release PRs may be terse. Quote the offending text exactly when you fail it. "
    "Answer with one JSON object matching the schema.\n\n" + UNTRUSTED_DATA_RULE
)


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passed: bool
    rationale: str = Field(max_length=1000)
    offending_text: str = Field(max_length=500)


@dataclass(frozen=True)
class MetadataResult:
    passed: bool | None  # None: no verdict (the check could not run)
    rationale: str
    offending: str = ""

    def lines(self) -> list[str]:
        if self.passed is None:
            return [f"- PR metadata check: not run ({self.rationale})"]
        if self.passed:
            return ["- PR metadata check: passed"]
        text = [f"- PR metadata check: **failed**: {self.rationale}"]
        if self.offending:
            text.append(f"  offending text: `{self.offending[:200]}`")
        return text


async def check_metadata(
    llm: LLMClient, *, title: str, body: str, check: MetadataCheck
) -> MetadataResult:
    """Judge the PR's title and description; deterministic rules before the model."""
    if len(title) > MAX_TITLE:
        return MetadataResult(False, f"the title is longer than {MAX_TITLE} characters", title)
    if check.body_required and not body.strip():
        return MetadataResult(False, "the description is empty")
    if not llm.has_tier(Tier.CHEAP):
        return MetadataResult(None, "no cheap model tier is configured")
    b = PromptBuilder()
    if check.additional_rules:
        b.text(
            "Additional rules of this repository:\n"
            + "\n".join(f"- {rule}" for rule in check.additional_rules)
        )
    b.untrusted("pr_title", cap_text(title, 512))
    b.untrusted("pr_description", cap_text(body, 8192, "[description truncated]"))
    try:
        result = await complete_structured(
            llm,
            Tier.CHEAP,
            system=_SYSTEM,
            user=b.build().text,
            output_model=_Verdict,
            schema_name="pr_metadata",
            max_tokens=512,
        )
    except LLMError as exc:
        return MetadataResult(None, f"the model failed ({type(exc).__name__})")
    verdict = result.value
    return MetadataResult(verdict.passed, verdict.rationale.strip(), verdict.offending_text)

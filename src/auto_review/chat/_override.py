"""``approve <reason>``: an authorised maintainer overrides the bot's requested changes.

All of these must hold, checked in this order, or the user is told which one failed:
1. the PR is open and not a draft;
2. the bot's latest verdict on the PR (its newest APPROVED or REQUEST_CHANGES review) requests
   changes: with nothing to override the bot does not approve (the reference approved anything
   that was not blocked, for anyone who asked);
3. the bot has reviewed the current head (one of its reviews carries the pipeline's marker for
   it): the approval is posted at the head, and a push after the blocking review must not ride
   on a reason given about older code (the bot's incremental review repeats its requested
   changes while they still hold, and posts a comment review once they do not);
4. the commenter is listed in ``override_approvers`` of the BASE branch's repo config, so a PR
   cannot list its own author (write access was already checked before this handler ran);
5. the commenter is not the PR's author: Forgejo refuses an author's approval of their own PR,
   and an override stands for a second person vouching for the change, so the bot's approval
   must not be the way round that rule (it may count towards the branch's required approvals);
6. the reason is substantive (``is_substantive_reason``): "lgtm" or "please approve" is not.

Then the bot posts an APPROVED review at the head that names the user, the overridden review
and quotes the reason, defanged (recorded on the PR, but the bot neither pings teams nor carries
markers in its own name), and once it is posted records it in the state database. The reason
never becomes a learning and is never read as an instruction.
"""

from __future__ import annotations

from auto_review.chat._context import ChatDeps, Turn
from auto_review.chat._ledger import OverrideRecord
from auto_review.chat._replies import ReviewPost, Turnout, quote
from auto_review.hosts import Review, ReviewEvent
from auto_review.review.config import load_repo_config
from auto_review.review.defang import defang
from auto_review.review.publish import review_marks

__all__ = ["FILLER_WORDS", "handle_approve", "is_substantive_reason"]

# Words that carry no reason on their own.
FILLER_WORDS = frozenset(
    {
        "lgtm",
        "ok",
        "okay",
        "please",
        "pls",
        "approve",
        "approved",
        "thanks",
        "thank",
        "you",
        "ship",
        "it",
        "fine",
        "looks",
        "good",
        "to",
        "me",
        "just",
        "do",
        "the",
        "a",
        "this",
        "+1",
    }
)
_VERDICTS = {"APPROVED", "REQUEST_CHANGES"}


def is_substantive_reason(text: str, *, min_words: int, min_chars: int) -> bool:
    """At least ``min_words`` words and ``min_chars`` characters, and more than filler."""
    words = [w.strip(".,;:!?()\"'").lower() for w in text.split()]
    words = [w for w in words if w]
    if len(words) < min_words or len(" ".join(words)) < min_chars:
        return False
    meaningful = {w for w in words if w not in FILLER_WORDS and len(w) > 1}
    return len(meaningful) >= max(3, min_words // 2)


def _latest_verdict(reviews: list[Review], bot_login: str) -> Review | None:
    mine = [
        r
        for r in reviews
        if r.author_login.lower() == bot_login.lower() and r.state.upper() in _VERDICTS
    ]
    return max(mine, key=lambda r: r.id) if mine else None


def _reviewed_head(reviews: list[Review], bot_login: str, head_sha: str) -> bool:
    return any(
        r.author_login.lower() == bot_login.lower()
        and any(head == head_sha for head, _run in review_marks(r.body))
        for r in reviews
    )


async def handle_approve(deps: ChatDeps, turn: Turn) -> Turnout:
    """Approve over the bot's requested changes, when every rule in the module holds."""
    pr = turn.pr
    config = deps.config
    if not pr.is_open or pr.merged or pr.draft:
        return Turnout("I only approve open pull requests that are ready for review.")
    reviews = await deps.host.list_reviews(turn.repo, pr.number)
    verdict = _latest_verdict(reviews, config.bot_login)
    if verdict is None or verdict.state.upper() != "REQUEST_CHANGES":
        return Turnout(
            "I have not requested changes on this pull request, so there is nothing to "
            "override and I will not approve it."
        )
    if not _reviewed_head(reviews, config.bot_login, pr.head_sha):
        return Turnout(
            f"I have not reviewed the current head `{pr.head_sha[:12]}` yet (my requested "
            "changes are about older code), so I will not approve it. Wait for my review of "
            f"this head, or ask for one with `@{config.mention_name} review`, then override."
        )
    loaded = await load_repo_config(deps.host, turn.repo, pr.base_sha)
    approvers = {name.strip().lstrip("@").lower() for name in loaded.config.override_approvers}
    if turn.author.lower() not in approvers:
        return Turnout(
            f"Only users listed in `override_approvers` in the repository config on the base "
            f"branch (`{pr.base_ref}`) can override my requested changes, and {turn.author} is "
            "not listed. A maintainer can add you there; a change in this pull request's own "
            "branch does not count."
        )
    if turn.author.lower() == pr.author_login.lower():
        return Turnout(
            "You opened this pull request, so you cannot override my requested changes on it: "
            "another listed approver has to. (The forge does not let authors approve their own "
            "pull requests either.)"
        )
    reason = turn.command.argument.strip()
    if not is_substantive_reason(
        reason, min_words=config.min_reason_words, min_chars=config.min_reason_chars
    ):
        return Turnout(
            f"Please say why my requested changes do not apply: `@{config.mention_name} approve "
            f"<reason>` with at least {config.min_reason_words} words, e.g. why a finding is "
            "wrong or why it is acceptable here. The reason is recorded on this pull request."
        )
    body = (
        f"Approval override by {turn.author} (listed in `override_approvers` on "
        f"`{pr.base_ref}`). This overrides my review {verdict.id} requesting changes; head "
        f"`{pr.head_sha[:12]}`.\n\nReason given:\n\n{defang(quote(reason, limit=2000))}"
    )

    def record(approval_id: int) -> None:
        deps.ledger.record_override(
            OverrideRecord(
                turn.repo,
                pr.number,
                pr.head_sha,
                turn.author,
                reason,
                verdict.id,
                deps.ledger.now(),
                approval_id,
            )
        )

    return Turnout(
        f"Approved on {turn.author}'s authority; the reason is recorded in the approval review.",
        review=ReviewPost(ReviewEvent.APPROVED, body),
        on_review_posted=record,
    )

"""Where a review's diff comes from, and whether it is bound to the head the review reports on.

closes F77: the forge's ``pulls/{n}.diff`` is the PR's diff at the moment of that request, not
of the head the pipeline fetched, checks out and posts its status on: a PR author who pushed B
and then A back around that request got A's status from a review of B. So every review's diff
comes from git in the clone at the head (``_incremental``): from the last reviewed head, else
the whole PR's from the PR's merge base (docs/adr/0013). Only when the clone gives neither (clone
failed, the forge's merge base not fetched, without one a merge base deeper than the fetched
history, a diff over the git step's output cap) does the review take the forge's diff, and then
it is UNBOUND:

- with a clone, each file's post-image object id in the diff's ``index`` lines is compared with
  the head's tree; a file that differs is proof of another head's diff, and the review stops
  (``HostUnavailable``: the queue retries, and posts ``error`` when the retries run out);
- a match is no proof: a diff of B that lacks a file only A changed matches A's tree for every
  file it lists, and telling that needs the merge base the clone did not have. So an unbound
  review never posts ``success`` (``pending`` instead, ``unbound_status``) nor approves, and it
  is not recorded as the PR's last reviewed head (no later review is skipped or made
  incremental on its account).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import hexdigits

from auto_review.errors import HostUnavailable
from auto_review.hosts import CommitState, CommitStatus, ReviewEvent
from auto_review.logs import get_logger
from auto_review.review._host import PipelineHost
from auto_review.review._request import ReviewRequest
from auto_review.review.diff import FileDiff, parse_diff
from auto_review.review.workspace import Workspace

__all__ = ["UNBOUND_NOTE", "ReviewDiff", "review_diff", "unbound_event", "unbound_status"]

_log = get_logger("review")
_MIN_ID = 7  # git's shortest abbreviation; a shorter ``index`` id proves nothing either way
UNBOUND_NOTE = (
    "the diff came from the forge and could not be checked against this head, "
    "so the status stays pending (ask the bot to review again to retry)"
)
_UNBOUND_TEXT = "auto-review: {what}; the forge's diff was not checked against this head"


@dataclass(frozen=True)
class ReviewDiff:
    """The diff text; ``since``: the last reviewed head it starts from (None: the whole PR);
    ``bound``: computed by git at the head reviewed."""

    text: str
    since: str | None
    bound: bool


async def review_diff(
    host: PipelineHost, request: ReviewRequest, workspace: Workspace | None, since: str | None
) -> ReviewDiff:
    """The clone's diff when it has one, else the forge's (unbound; checked where it can be)."""
    why = "the clone failed"
    if workspace is not None:
        if since is not None and workspace.since_diff is not None:
            return ReviewDiff(workspace.since_diff, since, bound=True)
        if since is not None:  # the whole PR's is reviewed instead
            _unavailable("incremental_diff_unavailable", request, workspace.since_failure)
        if workspace.pr_diff is not None:
            return ReviewDiff(workspace.pr_diff, None, bound=True)
        why = workspace.pr_diff_failure
    _unavailable("bound_diff_unavailable", request, why)
    text = await host.get_pull_diff(request.repo, request.number)
    if workspace is not None and workspace.tree:
        wrong = not_at_head(parse_diff(text), workspace.tree)
        if wrong is not None:
            _log.warning("forge_diff_not_at_head", repo=request.repo.full_name, path=wrong)
            raise HostUnavailable(
                f"the forge's diff is not of head {request.head_sha[:12]}: "
                "a file's content differs from the checkout"
            )
    return ReviewDiff(text, None, bound=False)


def not_at_head(files: Sequence[FileDiff], tree: Mapping[str, str]) -> str | None:
    """The first file whose post-image in the diff is not the one in ``tree`` (path -> object
    id at the head), or None when every id the diff gives agrees."""
    for f in files:
        blob = f.new_blob.lower()
        if len(blob) < _MIN_ID or not all(c in hexdigits for c in blob):
            continue
        at_head = tree.get(f.path)
        if set(blob) == {"0"}:  # removed by the diff
            if at_head is not None:
                return f.path
        elif at_head is None or not at_head.startswith(blob):
            return f.path
    return None


def unbound_status(status: CommitStatus, what: str | None = None) -> CommitStatus:
    """``status`` for an unbound diff: ``pending`` where it would have been ``success``."""
    if status.state is not CommitState.SUCCESS:
        return status
    text = _UNBOUND_TEXT.format(what=what or status.description.removeprefix("auto-review: "))
    return CommitStatus(status.context, CommitState.PENDING, text[:140])


def unbound_event(event: ReviewEvent) -> ReviewEvent:
    """No approval of an unbound diff: a clean review comments instead."""
    return ReviewEvent.COMMENT if event is ReviewEvent.APPROVED else event


def _unavailable(event: str, request: ReviewRequest, why: str) -> None:
    _log.info(
        event,
        repo=request.repo.full_name,
        number=request.number,
        head=request.head_sha,
        why=why,
    )

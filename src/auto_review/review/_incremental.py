"""The review's diff, ``merge-base(since, head)..head``, computed by git in the clone's job:
``since`` is the last reviewed head (the incremental diff) or the PR's base commit (the whole PR).

The forge cannot give it to us on every repository: the REST API's compare has no patch text,
and the web route ``/{o}/{r}/compare/{b}...{h}.diff`` ignores API tokens (Gitea and Forgejo
honour them on web routes only for git, raw, attachments, LFS, archives and feeds), so on a
private repository or a sign-in-only instance it answers 404 or a login page (docs/adr/0013).
``clone_workspace`` calls ``since_diff`` between its fetch of the head and the checkout: one
more fetch, by SHA, of the old head and of the head, each ``SINCE_DEPTH`` commits deep (Gitea
and Forgejo set ``uploadpack.allowAnySHA1InWant``, so an old head that no ref reaches still
comes, as long as the object exists), then ``merge-base`` and ``diff`` without network. An old
head that is gone (force-pushed and collected), a merge base deeper than the fetched history, or
any failed step gives ``SinceDiff(None, why)``, and the review covers the whole PR.

The whole PR's diff comes from the clone too (``pr_diff``; closes F77: the forge's
``pulls/{n}.diff`` is the PR's diff at the moment of that request, not of the head the review
checks out and posts its status on). Its start is the merge base the forge gives in the PR object
(``merge_base``): git needs no history to diff two commits, only their trees, so that commit and
the head are fetched by SHA one commit deep, however far back the PR forked. The diff stays bound
to the head (its post-image is the head's tree); which commit is the pre-image is the forge's
word, as ``base.sha`` is. Only a forge that gives no merge base costs the walk: the base commit
and the head ``BASE_DEPTH`` commits deep and ``git merge-base``, which finds nothing when the PR
or the base branch since the fork is longer than that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from auto_review.errors import ReviewError
from auto_review.hosts import is_sha
from auto_review.review._isolation import CommandResult

__all__ = [
    "BASE_DEPTH",
    "DIFF_OPTIONS",
    "SINCE_DEPTH",
    "GitStep",
    "SinceDiff",
    "pr_diff",
    "since_diff",
]

# Commits fetched back from each tip: more new commits than this since the last review, and the
# whole PR is reviewed again. The fetched pack stays under the clone's file-size and disk caps.
SINCE_DEPTH = 64
# Commits fetched back from the head and from the base branch's tip for the whole PR's diff when
# the forge gives no merge base: a longer PR, or a base branch that moved on further since the PR
# forked, and the clone gives no diff (the review then takes the forge's, unbound: _diffsource).
BASE_DEPTH = 256
# What the forge's ``.diff`` gives and ``parse_diff`` reads: renames detected, "Binary files
# ... differ" for binaries, no colour, and nothing a repository could configure to run.
DIFF_OPTIONS: tuple[str, ...] = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "-M",
    "--full-index",
)


class GitStep(Protocol):
    """One hardened, sandboxed git command of the clone (``workspace._Git``); raises a
    ``ReviewError`` (``WorkspaceError``) on any failure."""

    def __call__(
        self,
        *args: str,
        extra_env: Mapping[str, str] | None = None,
        secret: str = "",
        egress: Sequence[tuple[str, int]] = (),
    ) -> CommandResult: ...


@dataclass(frozen=True)
class SinceDiff:
    """The incremental diff text, or None and why not (our own words: for the operator's log)."""

    text: str | None
    why_not: str = ""


def since_diff(
    git: GitStep,
    *,
    clone_url: str,
    head_sha: str,
    since: str,
    auth: Mapping[str, str],
    secret: str,
    origin: tuple[str, int],
) -> SinceDiff:
    """The diff from ``merge-base(since, head_sha)`` to ``head_sha``; must run before checkout."""
    what = _Range("the last reviewed head", "the incremental diff", SINCE_DEPTH)
    return _range_diff(
        git,
        what,
        clone_url=clone_url,
        head_sha=head_sha,
        since=since,
        auth=auth,
        secret=secret,
        origin=origin,
    )


def pr_diff(
    git: GitStep,
    *,
    clone_url: str,
    head_sha: str,
    base_sha: str,
    merge_base: str | None,
    auth: Mapping[str, str],
    secret: str,
    origin: tuple[str, int],
) -> SinceDiff:
    """The whole PR's diff, from the forge's ``merge_base`` when it gives one, else from
    ``merge-base(base_sha, head_sha)``; must run before checkout."""
    if merge_base is not None:
        what = _Range("the forge's merge base", "the whole PR's diff", 1, fork=True)
    else:
        what = _Range("the base commit", "the whole PR's diff", BASE_DEPTH)
    return _range_diff(
        git,
        what,
        clone_url=clone_url,
        head_sha=head_sha,
        since=base_sha if merge_base is None else merge_base,
        auth=auth,
        secret=secret,
        origin=origin,
    )


@dataclass(frozen=True)
class _Range:
    since: str  # what ``since`` is, for the reasons
    diff: str
    depth: int
    fork: bool = False  # ``since`` is the merge base itself: no history to walk


def _range_diff(
    git: GitStep,
    what: _Range,
    *,
    clone_url: str,
    head_sha: str,
    since: str,
    auth: Mapping[str, str],
    secret: str,
    origin: tuple[str, int],
) -> SinceDiff:
    if not is_sha(since):
        return SinceDiff(None, f"{what.since} is not a full hexadecimal object id")
    fetch = ("fetch", "-q", f"--depth={what.depth}", "--no-tags", "--no-recurse-submodules")
    try:
        git(
            *fetch,
            "--",
            clone_url,
            head_sha,
            since,
            extra_env=auth,
            secret=secret,
            egress=(origin,),
        )
    except ReviewError as exc:
        return SinceDiff(None, f"{what.since} could not be fetched: {exc.message}")
    if what.fork:
        try:
            # What can be checked without history: the object the forge named is a commit.
            git("cat-file", "-e", f"{since}^{{commit}}")
        except ReviewError as exc:
            return SinceDiff(None, f"{what.since} is not a commit: {exc.message}")
        base = since
    else:
        try:
            base = git("merge-base", since, head_sha).stdout.decode("ascii", "replace").strip()
        except ReviewError as exc:
            return SinceDiff(None, f"no merge base within {what.depth} commits: {exc.message}")
        if not is_sha(base):
            return SinceDiff(None, "git merge-base gave no object id")
    try:
        # closes: a PR's own .gitattributes (``* -diff``) turning its changes into "Binary files
        # differ", hidden from the review: nothing is checked out yet, so git reads attributes
        # from no work tree and no index (git 2.39 has no --attr-source); the forge's diff of a
        # bare repository does not read them either.
        out = git("diff", *DIFF_OPTIONS, base, head_sha, "--").stdout
    except ReviewError as exc:
        return SinceDiff(None, f"{what.diff} failed: {exc.message}")
    return SinceDiff(out.decode("utf-8", "replace"))

"""End to end (F77): every review's diff is the head's own, or the status is not ``success``.

The fake forge moves the PR's branch around its ``pulls/{n}.diff`` answer (``on_call``), as a
PR author pushing head B and then A back around that request would.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from tests.e2e._harness import Harness, NoClone, finding, review_answer
from tests.fakes.forge import FakeForge

from auto_review.errors import HostUnavailable
from auto_review.review import Outcome, _incremental

BASE = "def price(items):\n    return sum(i.cost for i in items)\n"
HEAD = "def price(items):\n    return sum(i.cost for i in items) / len(items)\n"
BUG = "return sum(i.cost for i in items) / len(items)"
ANSWER = review_answer(finding("calc.py", 2, BUG, message="ZeroDivisionError on empty list"))
DIFF_ROUTE = "/repos/{owner}/{repo}/pulls/{index}.{diffType}"


def _pr(forge: FakeForge, base: dict[str, str] | None = None) -> tuple[int, str]:
    """PR ``f`` (head A: the bug in calc.py); its number and A."""
    forge.create_repo("bob/calc", {"calc.py": BASE, **(base or {})})
    head = forge.push("bob/calc", "f", {"calc.py": HEAD})
    return forge.open_pull("bob/calc", head="f", title="Average", author="bob").number, head


def _swap_around_the_diff(forge: FakeForge, a: str, files: dict[str, str | None]) -> str:
    """Head B (``files`` on main) is the branch's while the forge answers the diff, A after."""
    git = forge.repo("bob/calc").git
    main = git.resolve("refs/heads/main")
    b = git.commit("other-head", files, message="B", parent=main)
    forge.on_call(
        DIFF_ROUTE,
        before=lambda: git.git("update-ref", "refs/heads/f", b),
        after=lambda: git.git("update-ref", "refs/heads/f", a),
    )
    return b


def _statuses(forge: FakeForge, sha: str) -> list[tuple[str, str]]:
    return [(s.state, s.description) for s in forge.repo("bob/calc").statuses if s.sha == sha]


def _files_reviewed(harness: Harness) -> list[str]:
    text = harness.review_requests()[-1].text()
    return [p for p in ("calc.py", "other.py", "README.md") if f"## File: '{p}'" in text]


def test_a_head_pushed_and_pushed_back_around_the_diff_gets_its_own_review(
    harness: Harness,
) -> None:
    """Attack (F77): B (another file only) is the PR's head while the forge computes its diff,
    A (the bug) before and after; A must not get a status from a review of B."""
    number, a = _pr(harness.forge)
    _swap_around_the_diff(harness.forge, a, {"other.py": "X = 1\n"})
    harness.answer_reviews(ANSWER)
    outcome = asyncio.run(harness.run("bob/calc", number))
    assert outcome.outcome is Outcome.POSTED
    assert _files_reviewed(harness) == ["calc.py"]  # A's diff, from the clone
    assert outcome.errors == 1
    assert _statuses(harness.forge, a)[-1][0] == "failure"
    assert harness.forge.calls_to(DIFF_ROUTE) == []  # the forge's diff was not needed


def test_the_forges_diff_without_a_clone_never_turns_the_status_green(harness: Harness) -> None:
    number, a = _pr(harness.forge, base={".auto_review.yaml": "approve_when_clean: true\n"})
    harness.wrap_host = NoClone
    harness.answer_reviews(review_answer())
    outcome = asyncio.run(harness.run("bob/calc", number))
    assert outcome.outcome is Outcome.POSTED
    state, text = _statuses(harness.forge, a)[-1]
    assert state == "pending"
    assert "not checked against this head" in text
    [review] = harness.forge.repo("bob/calc").reviews
    assert review.state == "COMMENT"  # not APPROVED, although the base config opts in
    assert "could not be checked against this head" in review.body
    # Not recorded as reviewed: the next job for the same head reviews it again.
    again = asyncio.run(harness.run("bob/calc", number))
    assert again.outcome is Outcome.POSTED


def test_a_skip_on_the_forges_unbound_diff_is_not_green(harness: Harness) -> None:
    harness.forge.create_repo("bob/calc", {"calc.py": BASE})
    head = harness.forge.push("bob/calc", "f", {"yarn.lock": "# lock\n"})
    number = harness.forge.open_pull("bob/calc", head="f", title="Lock", author="bob").number
    harness.wrap_host = NoClone
    outcome = asyncio.run(harness.run("bob/calc", number))
    assert outcome.outcome is Outcome.SKIPPED
    state, text = _statuses(harness.forge, head)[-1]
    assert (state, text.startswith("auto-review: skipped: only")) == ("pending", True)
    harness.wrap_host = lambda host: host  # positive control: with the clone, green
    outcome = asyncio.run(harness.run("bob/calc", number))
    assert outcome.outcome is Outcome.SKIPPED
    assert _statuses(harness.forge, head)[-1][0] == "success"


class _NoMergeBase:
    """A forge whose PR objects carry no ``merge_base``: the clone walks history for it."""

    def __init__(self, host: Any) -> None:
        self._host = host

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    async def get_pull_request(self, repo: Any, number: int) -> Any:
        pr = await self._host.get_pull_request(repo, number)
        return dataclasses.replace(pr, merge_base=None)


def test_a_pr_forked_further_back_than_the_fetched_history_gets_a_bound_review(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base branch moved on by more than the clone's deep fetch since the PR forked: the
    forge's merge base gives the clone the diff, so the review is bound and turns green."""
    monkeypatch.setattr(_incremental, "BASE_DEPTH", 2)
    number, a = _pr(harness.forge)
    for i in range(4):
        harness.forge.push("bob/calc", "main", {"later.py": f"LATER = {i}\n"})
    harness.answer_reviews(review_answer())
    outcome = asyncio.run(harness.run("bob/calc", number))
    assert outcome.outcome is Outcome.POSTED
    assert _files_reviewed(harness) == ["calc.py"]
    assert _statuses(harness.forge, a)[-1][0] == "success"
    assert harness.forge.calls_to(DIFF_ROUTE) == []
    # Control: without the forge's merge base the clone finds none, and the forge's diff is
    # reviewed unbound (pending).
    harness.wrap_host = _NoMergeBase
    outcome = asyncio.run(harness.run("bob/calc", number, force=True))
    assert outcome.outcome is Outcome.POSTED
    assert _statuses(harness.forge, a)[-1][0] == "pending"
    assert len(harness.forge.calls_to(DIFF_ROUTE)) == 1


def test_a_forge_diff_of_another_head_is_refused_when_the_clone_has_no_merge_base(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clone cannot give the diff (no merge base from the forge, history too shallow), so
    the forge's is taken and checked against the clone's tree: B's calc.py is not A's."""
    monkeypatch.setattr(_incremental, "BASE_DEPTH", 1)
    harness.wrap_host = _NoMergeBase
    number, a = _pr(harness.forge)
    _swap_around_the_diff(harness.forge, a, {"calc.py": BASE + "\n# B\n"})
    harness.answer_reviews(ANSWER)
    with pytest.raises(HostUnavailable, match="not of head"):
        asyncio.run(harness.run("bob/calc", number))
    assert harness.forge.repo("bob/calc").reviews == []
    assert _statuses(harness.forge, a)[-1][0] == "error"
    # Positive control: the forge's diff of A itself is reviewed, unbound, so not green.
    harness.answer_reviews(review_answer())
    outcome = asyncio.run(harness.run("bob/calc", number))
    assert outcome.outcome is Outcome.POSTED
    assert _files_reviewed(harness) == ["calc.py"]
    assert _statuses(harness.forge, a)[-1][0] == "pending"
    assert len(harness.forge.calls_to(DIFF_ROUTE)) == 2

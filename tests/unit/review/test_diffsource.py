"""``_diffsource``: the forge's diff checked against the head's tree, and an unbound status."""

from __future__ import annotations

from auto_review.hosts import CommitState, CommitStatus, ReviewEvent
from auto_review.review._diffsource import not_at_head, unbound_event, unbound_status
from auto_review.review.diff import parse_diff

A = "a" * 40
B = "b" * 40
ZERO = "0" * 40


def _diff(path: str, old: str, new: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nindex {old}..{new} 100644\n--- a/{path}\n+++ b/{path}\n"
        "@@ -1 +1 @@\n-x\n+y\n"
    )


def _removed(path: str, old: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\ndeleted file mode 100644\nindex {old}..{ZERO}\n"
        f"--- a/{path}\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )


def test_a_diff_whose_post_images_are_the_heads_passes() -> None:
    files = parse_diff(_diff("x.py", B, A) + _removed("gone.py", B))
    assert [f.new_blob for f in files] == [A, ZERO]
    assert not_at_head(files, {"x.py": A, "other.py": B}) is None


def test_another_content_a_file_missing_at_head_or_a_removal_of_a_head_file_is_refused() -> None:
    tree = {"x.py": A, "gone.py": B}
    assert not_at_head(parse_diff(_diff("x.py", A, B)), tree) == "x.py"
    assert not_at_head(parse_diff(_diff("new.py", ZERO, A)), tree) == "new.py"
    assert not_at_head(parse_diff(_removed("gone.py", B)), tree) == "gone.py"


def test_abbreviated_ids_compare_as_prefixes_and_too_short_ones_prove_nothing() -> None:
    tree = {"x.py": A}
    assert not_at_head(parse_diff(_diff("x.py", "b" * 7, "a" * 7)), tree) is None
    assert not_at_head(parse_diff(_diff("x.py", "a" * 7, "b" * 7)), tree) == "x.py"
    assert not_at_head(parse_diff(_diff("x.py", "a" * 4, "b" * 4)), tree) is None


def test_an_unbound_review_is_pending_where_it_would_be_green_and_never_approves() -> None:
    green = CommitStatus("auto-review", CommitState.SUCCESS, "auto-review: no findings")
    held = unbound_status(green)
    assert held.state is CommitState.PENDING
    assert held.description.startswith("auto-review: no findings; the forge's diff was not")
    red = CommitStatus("auto-review", CommitState.FAILURE, "auto-review: 1 error")
    assert unbound_status(red) == red
    assert unbound_event(ReviewEvent.APPROVED) is ReviewEvent.COMMENT
    assert unbound_event(ReviewEvent.REQUEST_CHANGES) is ReviewEvent.REQUEST_CHANGES

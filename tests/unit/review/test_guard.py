from __future__ import annotations

from auto_review.hosts import Comment, CommentKind
from auto_review.review.findings import Finding, Severity
from auto_review.review.guard import finding_marker, guard_findings


def _f(
    path: str = "a.py", line: int = 3, sev: Severity = Severity.ERROR, msg: str = "bad"
) -> Finding:
    return Finding(path, line, line, sev, "bug", msg, f"code {path} {msg}", anchor=line)


def _comment(author: str, body: str, path: str | None = "a.py", line: int | None = 3) -> Comment:
    return Comment(1, CommentKind.REVIEW, author, body, "2026-01-01", path=path, line=line)


def test_guard_applies_floor_and_path_guard() -> None:
    result = guard_findings(
        [_f(sev=Severity.NOTE), _f(path="other.py"), _f()],
        floor=Severity.WARNING,
        reviewed_paths=frozenset({"a.py"}),
    )
    assert result.kept == (_f(),)
    assert (result.below_floor, result.off_diff) == (1, 1)


def test_guard_keeps_same_message_on_two_files_but_drops_exact_duplicates() -> None:
    result = guard_findings(
        [_f(), _f(), _f(path="b.py")],
        floor=Severity.NOTE,
        reviewed_paths=frozenset({"a.py", "b.py"}),
    )
    assert [f.path for f in result.kept] == ["a.py", "b.py"]
    assert result.duplicates == 1


def test_guard_skips_finding_the_bot_already_posted() -> None:
    earlier = [_comment("bot", "old text\n" + finding_marker(_f()), line=40)]
    result = guard_findings(
        [_f()],
        floor=Severity.NOTE,
        reviewed_paths=frozenset({"a.py"}),
        earlier=earlier,
        bot_login="bot",
    )
    assert result.kept == ()
    assert result.already_posted == 1


def test_guard_ignores_markers_pasted_by_other_users() -> None:
    earlier = [_comment("mallory", finding_marker(_f())), _comment("mallory", "bad")]
    result = guard_findings(
        [_f()],
        floor=Severity.NOTE,
        reviewed_paths=frozenset({"a.py"}),
        earlier=earlier,
        bot_login="bot",
    )
    assert result.kept == (_f(),)


def test_guard_recognises_same_message_at_same_line_without_marker() -> None:
    result = guard_findings(
        [_f()],
        floor=Severity.NOTE,
        reviewed_paths=frozenset({"a.py"}),
        earlier=[_comment("Bot", "**Error:** Bad")],
        bot_login="bot",
    )
    assert result.already_posted == 1


def test_guard_caps_findings_keeping_the_most_severe() -> None:
    many = [_f(line=i, sev=Severity.NOTE, msg=f"n{i}") for i in range(1, 30)]
    many.append(_f(line=99, sev=Severity.ERROR, msg="the real bug"))
    result = guard_findings(many, floor=Severity.NOTE, reviewed_paths=frozenset({"a.py"}),
                            max_findings=5)  # fmt: skip
    assert len(result.kept) == 5
    assert result.kept[0].message == "the real bug"
    assert result.over_cap == 25


def test_a_less_severe_copy_of_a_finding_cannot_hide_the_error() -> None:
    # closes F71: duplicates are matched by fingerprint (path, category, evidence), which has
    # no severity; the first one listed won, so a model (or a PR steering it) that listed a note
    # on the same code before the error turned a blocking review into a green one.
    error = _f(msg="SQL injection")
    note = _f(sev=Severity.NOTE, msg="consider a helper")
    note = Finding(note.path, 3, 3, Severity.NOTE, "bug", note.message, error.evidence, anchor=3)
    assert note.fingerprint == error.fingerprint
    result = guard_findings([note, error], floor=Severity.NOTE, reviewed_paths=frozenset({"a.py"}))
    assert [f.severity for f in result.kept] == [Severity.ERROR]
    assert result.duplicates == 1

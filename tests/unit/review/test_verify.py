from __future__ import annotations

from pathlib import Path

from tests.unit.review._git import real_diff

from auto_review.review.diff import parse_diff
from auto_review.review.findings import Finding, Severity
from auto_review.review.verify import check_findings

BEFORE = """import sqlite3


def find_user(conn, name):
    cur = conn.cursor()
    cur.execute("SELECT * FROM users WHERE name = ?", (name,))
    return cur.fetchone()


def unrelated():
    return 42
"""
AFTER = BEFORE.replace(
    'cur.execute("SELECT * FROM users WHERE name = ?", (name,))',
    "cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")",
)


def _finding(line: int, evidence: str, path: str = "db.py", end: int | None = None) -> Finding:
    return Finding(path, line, end or line, Severity.ERROR, "security", "SQL injection", evidence)


def _setup(tmp_path: Path) -> tuple[dict[str, object], list[str]]:
    files = {
        f.path: f for f in parse_diff(real_diff(tmp_path, {"db.py": BEFORE}, {"db.py": AFTER}))
    }
    return files, AFTER.splitlines()


def test_check_findings_keeps_finding_whose_evidence_is_at_cited_line(tmp_path: Path) -> None:
    files, lines = _setup(tmp_path)
    result = check_findings(
        [_finding(6, "cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")")],
        files,  # type: ignore[arg-type]
        lambda p: lines,
    )
    assert [(f.line_start, f.anchor) for f in result.kept] == [(6, 6)]
    assert result.dropped == ()


def test_check_findings_tolerates_whitespace_and_render_prefix_in_evidence(tmp_path: Path) -> None:
    files, lines = _setup(tmp_path)
    evidence = "6 +    cur.execute(f\"SELECT *   FROM users WHERE name = '{name}'\")"
    result = check_findings([_finding(6, evidence)], files, lambda p: lines)  # type: ignore[arg-type]
    assert len(result.kept) == 1


def test_check_findings_moves_finding_cited_two_lines_off(tmp_path: Path) -> None:
    files, lines = _setup(tmp_path)
    result = check_findings(
        [_finding(8, 'cur.execute(f"SELECT')],
        files,
        lambda p: lines,  # type: ignore[arg-type]
    )
    assert [(f.line_start, f.line_end, f.anchor) for f in result.kept] == [(6, 6, 6)]
    assert result.moved == 1


def test_check_findings_drops_hallucinated_evidence_and_unknown_paths(tmp_path: Path) -> None:
    files, lines = _setup(tmp_path)
    result = check_findings(
        [
            _finding(6, "os.system(user_input)"),
            _finding(6, "cur.execute", path="other.py"),
            _finding(11, "return 42"),  # real code, but not part of the diff
        ],
        files,  # type: ignore[arg-type]
        lambda p: lines,
    )
    assert result.kept == ()
    assert sorted(result.drop_reasons) == [
        "cited lines are not part of the diff",
        "evidence not found at the cited lines",
        "path is not part of the reviewed diff",
    ]


def test_check_findings_uses_diff_text_when_no_workspace_file(tmp_path: Path) -> None:
    files, _ = _setup(tmp_path)
    result = check_findings(
        [_finding(6, 'cur.execute(f"SELECT'), _finding(6, "not there")],
        files,  # type: ignore[arg-type]
        lambda p: None,
    )
    assert len(result.kept) == 1
    assert len(result.dropped) == 1


def test_check_findings_drops_a_suggestion_identical_to_the_current_code(tmp_path: Path) -> None:
    files, lines = _setup(tmp_path)
    same = "    cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")"
    finding = _finding(6, 'cur.execute(f"SELECT')
    noop = Finding(**{**finding.__dict__, "suggestion": same})
    result = check_findings([noop], files, lambda p: lines)  # type: ignore[arg-type]
    assert result.kept[0].suggestion is None

"""docs/REDTEAM.md cannot drift: every listed test exists, every red-team test is listed.

Also: every threat id it cites is defined in docs/THREAT-MODEL.md, whose cited tests exist.

Test ids are read from the first cell of each table row (``path::name``); test functions are
collected from the source by AST (no import, no collection side effects), so parametrised
tests are listed once under their function name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REDTEAM_DOC = ROOT / "docs" / "REDTEAM.md"
THREAT_DOC = ROOT / "docs" / "THREAT-MODEL.md"

_ROW = re.compile(r"^\|\s*`(?P<id>tests/[^`]+?\.py::[A-Za-z_][\w:]*)`\s*\|(?P<rest>.*)\|\s*$")
_THREAT_ID = re.compile(r"\bT\d+\b")


def _rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in REDTEAM_DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            cells = [cell.strip() for cell in match["rest"].split("|")]
            rows.append((match["id"], cells))
    return rows


def _tests_in(path: Path) -> set[str]:
    """``name`` and ``Class::name`` of every test function defined in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    item.name.startswith("test")
                ):
                    found.add(f"{node.name}::{item.name}")
    return found


def test_redteam_doc_lists_tests_in_tables() -> None:
    assert len(_rows()) > 50, "docs/REDTEAM.md: no table rows of the form | `path::test` | ..."


def test_every_test_listed_in_redteam_doc_exists() -> None:
    missing = []
    for test_id, _cells in _rows():
        path, _, name = test_id.partition("::")
        file = ROOT / path
        if not file.is_file() or name not in _tests_in(file):
            missing.append(test_id)
    assert missing == [], f"docs/REDTEAM.md lists tests that do not exist: {missing}"


def test_every_redteam_test_is_listed_in_redteam_doc() -> None:
    listed = {test_id for test_id, _cells in _rows()}
    unlisted = [
        f"{path.relative_to(ROOT).as_posix()}::{name}"
        for path in sorted((ROOT / "tests" / "redteam").rglob("test_*.py"))
        for name in sorted(_tests_in(path))
        if f"{path.relative_to(ROOT).as_posix()}::{name}" not in listed
    ]
    assert unlisted == [], f"red-team tests missing from docs/REDTEAM.md: {unlisted}"


def test_no_test_is_listed_twice_in_redteam_doc() -> None:
    ids = [test_id for test_id, _cells in _rows()]
    twice = sorted({test_id for test_id in ids if ids.count(test_id) > 1})
    assert twice == [], f"docs/REDTEAM.md lists these tests more than once: {twice}"


def test_every_redteam_doc_row_names_attack_threats_and_tier() -> None:
    incomplete = [
        test_id
        for test_id, cells in _rows()
        if len(cells) != 3 or not all(cells) or not _THREAT_ID.search(cells[1])
    ]
    assert incomplete == [], f"rows without attack, threat ids or tier: {incomplete}"


def test_every_threat_cited_in_redteam_doc_is_defined_in_threat_model() -> None:
    defined = set(re.findall(r"^#+\s*(T\d+)\b", THREAT_DOC.read_text(encoding="utf-8"), re.M))
    cited = {tid for _test_id, cells in _rows() for tid in _THREAT_ID.findall(cells[1])}
    assert cited - defined == set(), f"threat ids not defined in THREAT-MODEL.md: {cited - defined}"


def test_every_test_cited_in_threat_model_exists() -> None:
    cited = re.findall(r"`(tests/[^`]+?\.py)::([A-Za-z_]\w*)`", THREAT_DOC.read_text("utf-8"))
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (ROOT / path).is_file() or name not in _tests_in(ROOT / path)
    ]
    assert cited, "docs/THREAT-MODEL.md cites no test"
    assert missing == [], f"docs/THREAT-MODEL.md cites tests that do not exist: {missing}"
    listed = {test_id for test_id, _cells in _rows()}
    unmapped = sorted({f"{path}::{name}" for path, name in cited} - listed)
    assert unmapped == [], f"THREAT-MODEL.md cites tests REDTEAM.md does not map: {unmapped}"


def test_listing_catches_a_missing_test_positive_control(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import pytest\n\n@pytest.mark.parametrize('x', [1])\ndef test_real(x):\n    pass\n\n"
        "class TestGroup:\n    async def test_inner(self):\n        pass\n"
    )
    assert _tests_in(sample) == {"test_real", "TestGroup::test_inner"}
    assert "test_imaginary" not in _tests_in(sample)

from __future__ import annotations

from pathlib import Path

from tests.unit.review._git import real_diff

from auto_review.review.diff import MAX_DIFF_LINES, parse_diff, render_file
from auto_review.review.triage import SkipReason, triage

BEFORE = "\n".join(f"line {i}" for i in range(1, 31)) + "\n"
PY_BEFORE = """import os


def handler(request):
    user = request.args["user"]
    path = os.path.join("/srv", user)
    with open(path) as fh:
        data = fh.read()
    return data


def other():
    return 1
"""


def test_parse_diff_numbers_new_side_lines_when_lines_are_added_and_removed(
    tmp_path: Path,
) -> None:
    after = BEFORE.replace("line 10\n", "line ten\nline ten b\n").replace("line 20\n", "")
    (fd,) = parse_diff(real_diff(tmp_path, {"a.txt": BEFORE}, {"a.txt": after}))
    assert fd.path == "a.txt"
    assert fd.status == "modified"
    assert fd.added == {10, 11}
    assert fd.new_text[10] == "line ten"
    assert fd.new_text[11] == "line ten b"
    # One line became two above, one line removed: old 19 is new 20, old 21 is new 21.
    assert fd.new_text[20] == "line 19"
    assert fd.new_text[21] == "line 21"
    assert 10 in fd.commentable
    assert 7 in fd.commentable
    assert 1 not in fd.commentable
    assert fd.additions == 2
    assert fd.deletions == 2


def test_parse_diff_reads_added_removed_renamed_and_binary_files(tmp_path: Path) -> None:
    before = {"old.txt": BEFORE, "gone.txt": "bye\n", "img.bin": None}
    after = {
        "old.txt": None,
        "new/place.txt": BEFORE + "extra\n",
        "gone.txt": None,
        "fresh.py": "x = 1\n",
        "img.bin": None,
    }
    files = {f.path: f for f in parse_diff(real_diff(tmp_path, before, after))}
    assert files["new/place.txt"].status == "renamed"
    assert files["new/place.txt"].old_path == "old.txt"
    assert files["gone.txt"].status == "removed"
    assert files["fresh.py"].status == "added"
    assert files["fresh.py"].added == {1}


def test_parse_diff_unquotes_unusual_file_names(tmp_path: Path) -> None:
    name = 'caf\u00e9 "q".txt'
    (fd,) = parse_diff(real_diff(tmp_path, {}, {name: "hi\n"}))
    assert fd.path == name


def test_parse_diff_does_not_treat_diff_header_inside_content_as_new_file(tmp_path: Path) -> None:
    text = "diff --git a/evil b/evil\n+++ b/evil\n"
    files = parse_diff(real_diff(tmp_path, {}, {"doc.txt": text}))
    assert [f.path for f in files] == ["doc.txt"]
    assert files[0].new_text[1] == "diff --git a/evil b/evil"


def test_render_file_numbers_new_hunk_and_leaves_old_hunk_unnumbered(tmp_path: Path) -> None:
    after = PY_BEFORE.replace('    path = os.path.join("/srv", user)\n', "    path = user\n")
    (fd,) = parse_diff(real_diff(tmp_path, {"h.py": PY_BEFORE}, {"h.py": after}))
    text = render_file(fd, new_lines=after.splitlines())
    assert "## File: 'h.py'" in text
    assert "6 +    path = user" in text
    assert '-    path = os.path.join("/srv", user)' in text
    new_part, old_part = text.split("__old hunk__")
    assert "__new hunk__" in new_part
    assert not any(line[:1].isdigit() for line in old_part.strip().splitlines())


def test_render_file_extends_context_up_to_enclosing_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(12))
    before = f"import os\n\n\ndef big():\n{body}\n    return x0\n"
    after = before.replace("    return x0\n", "    return x11\n")
    (fd,) = parse_diff(real_diff(tmp_path, {"b.py": before}, {"b.py": after}))
    text = render_file(fd, new_lines=after.splitlines())
    assert "4  def big():" in text
    plain = render_file(fd)
    assert "4  def big():" not in plain


def test_render_file_collapses_deleted_file_to_one_line(tmp_path: Path) -> None:
    (fd,) = parse_diff(real_diff(tmp_path, {"x.py": "a = 1\n"}, {"x.py": None}))
    assert render_file(fd) == "## File: 'x.py' (deleted)\n"
    assert fd.commentable == frozenset()


def test_parse_diff_stops_building_lines_at_its_budget_and_names_the_file(
    tmp_path: Path,
) -> None:
    # A PR of one-character lines: 4 MiB of diff cost ~400 MiB parsed, and the forge may send
    # 32 MiB. Past MAX_DIFF_LINES a file keeps its name and status but no lines; files that
    # still fit the budget after it are parsed as usual.
    huge = "diff --git a/big.txt b/big.txt\nnew file mode 100644\n--- /dev/null\n+++ b/big.txt\n"
    huge += f"@@ -0,0 +1,{MAX_DIFF_LINES} @@\n" + "+\n" * MAX_DIFF_LINES
    small = real_diff(tmp_path, {}, {"small.py": "x = 1\n"})
    files = {f.path: f for f in parse_diff(small + huge + small.replace("small", "later"))}
    assert files["big.txt"].oversized
    assert files["big.txt"].status == "added"
    assert files["big.txt"].hunks == ()
    assert files["big.txt"].new_text == {}
    assert files["small.py"].new_text == {1: "x = 1"}
    assert files["later.py"].new_text == {1: "x = 1"}
    assert not files["small.py"].oversized
    triaged = triage(list(files.values()), is_ignored=lambda _p: False)
    assert ("big.txt", SkipReason.TOO_LARGE) in triaged.skipped
    assert sorted(f.path for f in triaged.review) == ["later.py", "small.py"]

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auto_review.review.tools import list_files_task, read_file_task, search_task


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("def f():\n    return os.system(cmd)\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x.js").write_text("os.system\n")
    (root / "evil").symlink_to("/etc")
    (root / "bin.dat").write_bytes(b"\0os.system")
    deep = root
    for i in range(80):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "deep.py").write_text("os.system\n")
    (root / "aaa.txt").write_text("a" * 5000 + "b\n")
    return root


def test_read_file_task_returns_numbered_range(tmp_path: Path) -> None:
    out = read_file_task(
        {"root": str(_repo(tmp_path)), "path": "src/a.py", "start_line": 2, "end_line": 2}
    )
    assert out == {"ok": True, "text": "2:     return os.system(cmd)", "truncated": False}


def test_read_file_task_refuses_escapes_and_symlinks(tmp_path: Path) -> None:
    root = str(_repo(tmp_path))
    for path in ("../x", "/etc/passwd", "evil/passwd", "src/../../x", ""):
        assert read_file_task({"root": root, "path": path})["ok"] is False


def test_search_task_finds_hits_but_skips_symlinks_vendored_binary_and_deep_dirs(
    tmp_path: Path,
) -> None:
    out = search_task({"root": str(_repo(tmp_path)), "pattern": r"os\.system"})
    assert out["ok"] is True
    assert [h["path"] for h in out["hits"]] == ["src/a.py"]


def test_search_and_listing_never_start_in_a_symlinked_directory(tmp_path: Path) -> None:
    # closes F72: the walk skipped symlinked children but scanned a symlinked *starting*
    # directory, so ``search`` with path "evil" walked what it points at (each read was still
    # refused) and ``list_files`` returned the names of files there.
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.py").write_text("os.system\n")
    root = _repo(tmp_path)
    (root / "out").symlink_to(outside)
    (root / "src" / "up").symlink_to(outside)
    for scope in ("out", "out/sub", "src/up", "src/up/sub"):
        found = search_task({"root": str(root), "pattern": "os", "path": scope})
        assert found["ok"] is False, scope
        assert list_files_task({"root": str(root), "dirs": [scope]}) == {"files": []}, scope
    assert list_files_task({"root": str(root), "dirs": ["src", "."]}) == {
        "files": ["aaa.txt", "bin.dat", "src/a.py"]
    }
    assert [
        h["path"] for h in search_task({"root": str(root), "pattern": "os", "path": "src"})["hits"]
    ] == ["src/a.py"]


def test_search_task_runs_pathological_pattern_in_linear_time(tmp_path: Path) -> None:
    root = str(_repo(tmp_path))
    # Catastrophic for a backtracking engine on "aaaa...ab": no match, found in linear time.
    assert search_task({"root": root, "pattern": "(a+)+$"}) == {
        "ok": True,
        "hits": [],
        "truncated": False,
    }
    positive = search_task({"root": root, "pattern": "(a+)+b$"})
    assert [h["path"] for h in positive["hits"]] == ["aaa.txt"]


def test_search_task_reports_invalid_and_backtracking_only_patterns(tmp_path: Path) -> None:
    root = str(_repo(tmp_path))
    assert search_task({"root": root, "pattern": "(a"})["ok"] is False
    assert search_task({"root": root, "pattern": r"(a)\1"})["ok"] is False


def test_a_read_file_task_in_a_fresh_interpreter_loads_no_parser(tmp_path: Path) -> None:
    """Each of the verifier's tool calls starts an interpreter: it must not load tree-sitter."""
    root = _repo(tmp_path)
    code = (
        "import json, sys\n"
        "from auto_review.review._analysis import run_task\n"
        f"out = run_task('read_file', {{'root': {str(root)!r}, 'path': 'src/a.py'}})\n"
        "print(json.dumps([out['ok'], sorted(m for m in sys.modules if 'tree_sitter' in m)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    ok, parsers = json.loads(done.stdout)
    assert ok is True
    assert parsers == []


def test_run_analysis_maps_an_answer_nested_too_deep_to_analysis_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child subverted by the repository it reads answers 10 KB of nesting, under the output
    # cap and deeper than the parser goes: the task fails, the review does not crash.
    from auto_review.review import _isolation

    def subverted(*args: object, **kwargs: object) -> bytes:
        return b"[" * 5_000 + b"]" * 5_000

    monkeypatch.setattr(_isolation.sandbox, "run_callable", subverted)
    with pytest.raises(_isolation.AnalysisFailed, match="unreadable"):
        _isolation.run_analysis("read_file", {"root": str(tmp_path)}, timeout=5)


@pytest.mark.parametrize(("values", "refused"), [(1_999_999, False), (2_000_001, True)])
def test_run_analysis_refuses_an_answer_of_too_many_values_before_parsing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: int, refused: bool
) -> None:
    # 16 MiB of tiny values (within the output cap) would cost ~400 MiB to parse.
    from auto_review.review import _isolation

    def subverted(*args: object, **kwargs: object) -> bytes:
        return b'{"x":[' + b",".join([b"0"] * values) + b"]}"

    monkeypatch.setattr(_isolation.sandbox, "run_callable", subverted)
    if refused:
        with pytest.raises(_isolation.AnalysisFailed, match="too many values"):
            _isolation.run_analysis("read_file", {"root": str(tmp_path)}, timeout=5)
    else:
        assert (
            len(_isolation.run_analysis("read_file", {"root": str(tmp_path)}, timeout=5)["x"])
            == values
        )


@pytest.mark.parametrize("timeout", [0, 121, float("nan")])
def test_run_analysis_refuses_a_deadline_past_what_the_job_server_grants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timeout: float
) -> None:
    # The job server would cut it to the grant's ceiling (F59), which assumes at most 120 s.
    from auto_review.review import _isolation

    ran: list[object] = []
    monkeypatch.setattr(_isolation.sandbox, "run_callable", lambda *a, **k: ran.append(a))
    with pytest.raises(ValueError, match="at most 120 s"):
        _isolation.run_analysis("read_file", {"root": str(tmp_path)}, timeout=timeout)
    assert ran == []

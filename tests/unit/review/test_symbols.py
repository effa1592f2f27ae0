from __future__ import annotations

from pathlib import Path

import pytest

from auto_review.review._isolation import run_analysis
from auto_review.review.symbols import enclosing_definitions, language_for

SAMPLES = {
    "a.py": ("class A:\n    def m(self):\n        return 1\n", 3, ["A", "m"]),
    "a.js": ("class A {\n  m() {\n    return 1;\n  }\n}\n", 3, ["A", "m"]),
    "a.ts": ("interface I { x: number }\nfunction f(): number {\n  return 1;\n}\n", 3, ["f"]),
    "a.tsx": ("function C() {\n  return <div/>;\n}\n", 2, ["C"]),
    "a.go": ("package p\n\nfunc (s *S) M() int {\n\treturn 1\n}\n", 4, ["M"]),
    "a.rs": ("impl S {\n    fn m(&self) -> i32 {\n        1\n    }\n}\n", 3, ["S", "m"]),
    "A.java": ("class A {\n  int m() {\n    return 1;\n  }\n}\n", 3, ["A", "m"]),
    "a.c": ("int *f(int x) {\n  return 0;\n}\n", 2, ["f"]),
    "a.cpp": ("namespace n {\nint A::f(int x) {\n  return x;\n}\n}\n", 3, ["n", "A::f"]),
    "a.cs": ("class A {\n  int M() {\n    return 1;\n  }\n}\n", 3, ["A", "M"]),
    "a.rb": ("module M\n  class C\n    def f\n      1\n    end\n  end\nend\n", 4, ["M", "C", "f"]),
    "a.php": ("<?php\nclass A {\n  function m() {\n    return 1;\n  }\n}\n", 4, ["A", "m"]),
    "a.kt": ("class A {\n  fun m(): Int {\n    return 1\n  }\n}\n", 3, ["A", "m"]),
}


@pytest.mark.parametrize("path", sorted(SAMPLES))
def test_enclosing_definitions_names_the_definitions_around_a_changed_line(path: str) -> None:
    source, line, names = SAMPLES[path]
    language = language_for(path)
    assert language is not None
    found = enclosing_definitions(language, source.encode(), frozenset({line}))
    assert [d["name"] for d in found] == names


def test_symbols_task_runs_in_analysis_child_and_skips_symlinks(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # the sandbox reads as an unprivileged id
    (tmp_path / "a.py").write_text(SAMPLES["a.py"][0])
    (tmp_path / "b.py").symlink_to("/etc/passwd")
    out = run_analysis(
        "symbols", {"root": str(tmp_path), "files": {"a.py": [3], "b.py": [1]}}, timeout=60
    )
    assert [d["name"] for d in out["a.py"]] == ["A", "m"]
    assert "b.py" not in out

"""The scratch dir's removal: every shape a job can leave, nothing outside it touched."""

from __future__ import annotations

import os
from pathlib import Path

from auto_review.sandbox import _scratch


def test_remove_tree_removes_locked_deep_trees_but_never_follows_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("host file\n")
    top = tmp_path / "scratch"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    (top / "a" / "link").symlink_to(outside)
    (top / "a" / "filelink").symlink_to(outside / "keep")
    os.mkfifo(top / "fifo")
    os.chmod(top / "a" / "b", 0)
    os.chmod(top / "a", 0o500)
    os.chmod(top, 0)
    assert _scratch.remove_tree(str(top))
    assert not os.path.lexists(top)
    assert (outside / "keep").read_text() == "host file\n"
    assert _scratch.remove_tree(str(top))  # already gone


def test_remove_tree_refuses_a_symlink_as_the_top(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert not _scratch.remove_tree(str(link))
    assert (target / "keep").exists()

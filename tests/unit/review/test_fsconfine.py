from __future__ import annotations

import os
from pathlib import Path

import pytest

from auto_review.review._fsconfine import is_safe_relpath, read_beneath


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("print('hi')\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[http]\n\textraHeader = secret\n")
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "cfg").symlink_to(".git/config")
    (root / "linkdir").symlink_to("src")
    os.mkfifo(root / "fifo")
    return root


def test_read_beneath_reads_regular_file(tree: Path) -> None:
    read = read_beneath(tree, "src/a.py", max_bytes=100)
    assert read is not None
    assert read.data == b"print('hi')\n"
    assert not read.truncated


@pytest.mark.parametrize(
    "rel",
    [
        "passwd",
        "cfg",
        "linkdir/a.py",
        "fifo",
        "src",
        "../repo/src/a.py",
        "/etc/passwd",
        "",
        "src//a.py",
        "missing.py",
    ],
)
def test_read_beneath_refuses_symlinks_specials_and_escapes(tree: Path, rel: str) -> None:
    assert read_beneath(tree, rel, max_bytes=100) is None


def test_read_beneath_caps_a_huge_sparse_file(tree: Path) -> None:
    with (tree / "big.bin").open("wb") as fh:
        fh.truncate(2 * 1024**3)
    read = read_beneath(tree, "big.bin", max_bytes=1000)
    assert read is not None
    assert len(read.data) == 1000
    assert read.truncated


def test_is_safe_relpath_is_lexical() -> None:
    assert is_safe_relpath("a/b.c")
    assert not is_safe_relpath("a/../b")
    assert not is_safe_relpath("./a")
    assert not is_safe_relpath("a\0b")


@pytest.mark.parametrize("rel", ["passwd", "cfg", "linkdir/a.py"])
def test_per_component_fallback_refuses_symlinks_too(
    tree: Path, rel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The O_NOFOLLOW walk (kernels without openat2) must refuse what openat2 refuses."""
    from auto_review.review import _fsconfine

    monkeypatch.setattr(_fsconfine, "_open_openat2", lambda root_fd, rel: None)
    assert read_beneath(tree, rel, max_bytes=100) is None
    assert read_beneath(tree, "src/a.py", max_bytes=100) is not None  # positive control

"""identity.share_read_only: what root shares of its own files with a restricted-tier job."""

from __future__ import annotations

import stat
from pathlib import Path

from auto_review.sandbox import identity


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_share_read_only_opens_a_pyinstaller_style_tree_for_reading_all_the_way_down(
    tmp_path: Path,
) -> None:
    """PyInstaller extracts its one-file bundle 0700 with files 0600/0700: a job of another uid
    must read every file and search every directory, and run what the owner may run."""
    top = tmp_path / "_MEIabc"
    package = top / "auto_review" / "review"
    package.mkdir(parents=True)
    library = top / "libpython3.11.so.1.0"
    module = package / "queries.scm"
    for path, mode in ((library, 0o700), (module, 0o600)):
        path.write_bytes(b"x")
        path.chmod(mode)
    for directory in (package, package.parent, top):
        directory.chmod(0o700)

    identity.share_read_only(str(top))

    assert [_mode(p) for p in (top, package.parent, package)] == [0o755] * 3
    assert (_mode(library), _mode(module)) == (0o755, 0o644)


def test_share_read_only_never_adds_write_and_never_follows_symlinks(tmp_path: Path) -> None:
    """Only root may write the shared tree (a job that could would poison later spawns, §4.1
    case 29); a symlink in it must not carry the widening to a file outside."""
    top = tmp_path / "bundle"
    top.mkdir(mode=0o700)
    outside = tmp_path / "secret"
    outside.write_bytes(b"k")
    outside.chmod(0o600)
    (top / "link").symlink_to(outside)
    kept = top / "already-shared"
    kept.write_bytes(b"x")
    kept.chmod(0o644)

    identity.share_read_only(str(top))

    assert _mode(outside) == 0o600
    assert _mode(kept) == 0o644
    assert all(not p.lstat().st_mode & 0o022 for p in (top, kept))

"""The built file refuses to run from an unpacked directory another user could swap (F91)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.release._binary import host_environment, run_binary


def _version_in(binary: Path, tmpdir: Path) -> tuple[int, str, str]:
    result = run_binary(binary, "--version", env=host_environment(TMPDIR=str(tmpdir)))
    return result.returncode, result.stdout, result.stderr


def test_release_binary_runs_from_a_private_tmpdir(release_binary: Path, tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    code, out, err = _version_in(release_binary, private)
    assert code == 0, err
    assert out.startswith("auto-review ")
    assert list(private.iterdir()) == []  # unpacked there, and removed at exit


def test_release_binary_refuses_a_tmpdir_anyone_may_write(
    release_binary: Path, tmp_path: Path
) -> None:
    """Without the sticky bit any user may rename the unpacked directory and put their own
    libraries at its path, which this process goes on loading (extensions, workers)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    code, out, err = _version_in(release_binary, shared)
    assert code != 0
    assert out == ""
    assert "refusing to run" in err
    assert f"{shared} is writable by others (mode 777)" in err
    shared.chmod(0o1777)
    assert _version_in(release_binary, shared)[0] == 0


def test_release_binary_run_by_root_refuses_a_tmpdir_of_another_user(
    release_binary: Path, tmp_path: Path
) -> None:
    """TMPDIR inside another user's directory (sudo -E, a unit's Environment=): they own the
    directory entry of root's unpacked files and can swap it."""
    if os.geteuid() != 0:
        pytest.skip("only root can hand a directory to another user")
    nobody = pwd.getpwnam("nobody")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    tmp_path.chmod(0o755)
    code, out, err = _version_in(release_binary, theirs)
    assert code != 0
    assert out == ""
    assert f"{theirs} belongs to uid {nobody.pw_uid}" in err

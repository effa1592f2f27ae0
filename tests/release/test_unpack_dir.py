"""The built file refuses to run from an unpacked directory another user could swap (F91)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.release._binary import host_environment, run_binary

# Run by the built file's worker entry once its stdin closes: a module it has not loaded yet,
# an extension module, so it comes from the unpacked files on disk.
_LATE_IMPORT = """
def late(payload):
    import tree_sitter_kotlin
    return tree_sitter_kotlin.__file__.encode()
"""


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


def test_release_binary_unpacked_files_survive_tmp_age_clean_up(
    release_binary: Path, tmp_path: Path
) -> None:
    """F92: systemd-tmpfiles' age-based clean-up (10 days on Fedora, RHEL, Debian 13) deleted
    a running process's unpacked files and directory; its later imports failed, and in a shared
    /tmp another user could have taken the directory's name. The process now holds the lock
    that clean-up honours."""
    tmpfiles = shutil.which("systemd-tmpfiles")
    if tmpfiles is None:
        pytest.skip("systemd-tmpfiles is not installed")
    private = tmp_path / "tmp"
    private.mkdir(mode=0o700)
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "arprobe.py").write_text(_LATE_IMPORT, encoding="utf-8")
    argv = [str(release_binary), "__auto_review_sandbox_worker__", "arprobe:late"]
    argv += ["--path", str(tmp_path / "probe")]
    env = host_environment(TMPDIR=str(private))
    with subprocess.Popen(
        argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        deadline = time.monotonic() + 60
        while not list(private.glob("_MEI*/tree_sitter_kotlin")):
            assert time.monotonic() < deadline, "the built file did not unpack"
            time.sleep(0.05)
        time.sleep(1)  # past the bootloader's extraction: the application process is running
        two_days_ago = time.time() - 2 * 86400
        for path in sorted(private.rglob("*"), key=lambda p: -len(p.parts)):
            os.utime(path, (two_days_ago, two_days_ago), follow_symlinks=False)
        config = tmp_path / "age.conf"  # by mtime only: a test cannot backdate ctime
        config.write_text(f"e {private} - - - mM:1d\n", encoding="utf-8")
        clean = subprocess.run(
            [tmpfiles, "--clean", str(config)], capture_output=True, text=True, check=False
        )
        assert clean.returncode == 0, clean.stderr
        assert list(private.glob("_MEI*/tree_sitter_kotlin"))
        out, err = process.communicate(b"", timeout=60)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith(str(private))

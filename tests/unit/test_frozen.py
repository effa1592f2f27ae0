"""Child programs of the one-file build get the host's library path, not the bundle's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from auto_review._frozen import (
    bundle_dir,
    hold_unpack_dir,
    host_environ,
    is_frozen,
    own_executable,
    refuse_unsafe_unpack_dir,
    tie_to_bootloader,
    unpack_dir_problem,
)

BUNDLE = "/tmp/_MEIabc123"


def test_host_environ_restores_the_library_path_the_bootloader_saved() -> None:
    env = {
        "LD_LIBRARY_PATH": f"{BUNDLE}:/opt/host/lib",
        "LD_LIBRARY_PATH_ORIG": "/opt/host/lib",
        "PATH": "/usr/bin",
    }
    assert host_environ(env, frozen=True) == {
        "LD_LIBRARY_PATH": "/opt/host/lib",
        "PATH": "/usr/bin",
    }


def test_host_environ_removes_the_library_path_when_there_was_none_before() -> None:
    env = {"LD_LIBRARY_PATH": BUNDLE, "HOME": "/root"}
    assert host_environ(env, frozen=True) == {"HOME": "/root"}


def test_host_environ_drops_the_bootloader_markers() -> None:
    env = {
        "_PYI_APPLICATION_HOME_DIR": BUNDLE,
        "_PYI_ARCHIVE_FILE": "/usr/local/bin/auto-review",
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "_MEIPASS2": BUNDLE,
        "LANG": "C.UTF-8",
    }
    assert host_environ(env, frozen=True) == {"LANG": "C.UTF-8"}


def test_host_environ_leaves_the_environment_alone_outside_a_frozen_build() -> None:
    env = {"LD_LIBRARY_PATH": "/opt/lib", "LD_LIBRARY_PATH_ORIG": "/x", "_PYI_X": "1"}
    assert host_environ(env, frozen=False) == env


def test_host_environ_returns_a_copy() -> None:
    env = {"LD_LIBRARY_PATH": BUNDLE}
    host_environ(env, frozen=True)
    assert env == {"LD_LIBRARY_PATH": BUNDLE}


def test_frozen_detection_is_false_when_running_from_source() -> None:
    assert is_frozen() is False
    assert bundle_dir() is None
    assert host_environ({"LD_LIBRARY_PATH": "/opt/lib"}) == {"LD_LIBRARY_PATH": "/opt/lib"}


def test_frozen_detection_follows_the_bootloader_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", BUNDLE, raising=False)
    assert is_frozen() is True
    assert str(bundle_dir()) == BUNDLE
    assert host_environ({"LD_LIBRARY_PATH": BUNDLE}) == {}
    assert str(own_executable()) == sys.executable


def test_tie_to_bootloader_does_nothing_when_running_from_source() -> None:
    assert tie_to_bootloader() is False


def test_tie_to_bootloader_refuses_a_parent_that_is_not_this_executable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pytest's parent is a shell or CI runner, not a one-file bootloader of sys.executable.
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", BUNDLE, raising=False)
    assert tie_to_bootloader() is False


def _unpacked(parent: Path) -> Path:
    bundle = parent / "_MEI0000abcdXYZ"
    bundle.mkdir(mode=0o700)
    return bundle


def test_unpack_dir_in_a_private_directory_is_accepted(tmp_path: Path) -> None:
    assert unpack_dir_problem(str(_unpacked(tmp_path))) is None


def test_unpack_dir_below_a_directory_anyone_may_write_is_refused(tmp_path: Path) -> None:
    """F91: whoever may write the parent can rename the unpacked directory and put theirs."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    problem = unpack_dir_problem(str(_unpacked(shared)))
    assert problem == f"{shared} is writable by others (mode 777)"
    shared.chmod(0o1777)  # sticky, like /tmp: others may not rename what is ours
    assert unpack_dir_problem(str(shared / "_MEI0000abcdXYZ")) is None


def test_unpack_dir_writable_by_its_group_is_refused(tmp_path: Path) -> None:
    bundle = _unpacked(tmp_path)
    bundle.chmod(0o770)
    assert unpack_dir_problem(str(bundle)) == f"{bundle} is writable by others (mode 770)"


def test_unpack_dir_through_a_link_to_a_shared_directory_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    _unpacked(shared)
    (tmp_path / "link").symlink_to(shared)
    problem = unpack_dir_problem(str(tmp_path / "link" / "_MEI0000abcdXYZ"))
    assert problem == f"{shared} is writable by others (mode 777)"


def test_unpack_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    """F91: a directory of another user on the way (TMPDIR=/home/them/tmp) is theirs to swap."""
    bundle = _unpacked(tmp_path)
    other = 65534 if os.geteuid() != 65534 else 65533
    # The first directory on the way that is neither root's nor `other`'s: the bundle itself as
    # root, pytest's own /tmp/pytest-of-<user> as anyone else.
    first = next(
        p
        for p in [*reversed(bundle.parents), bundle]
        if p.lstat().st_uid not in ((other,) if p == bundle else (0, other))
    )
    assert unpack_dir_problem(str(bundle), euid=other) == f"{first} belongs to uid {os.geteuid()}"
    if os.geteuid() != 0:
        return  # only root can give a directory away; the euid case above covers the rule
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, other, other)
    problem = unpack_dir_problem(str(_unpacked(theirs)))
    assert problem == f"{theirs} belongs to uid {other}"


def test_refuse_unsafe_unpack_dir_does_nothing_outside_the_application_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Running from source, or a re-executed worker (its parent is no bootloader): not checked.
    refuse_unsafe_unpack_dir()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(_unpacked(shared)), raising=False)
    refuse_unsafe_unpack_dir()


def test_hold_unpack_dir_only_in_the_application_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert hold_unpack_dir() is False  # from source
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(_unpacked(tmp_path)), raising=False)
    assert hold_unpack_dir() is False  # pytest's parent is no bootloader

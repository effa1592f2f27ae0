"""Child programs of the one-file build get the host's library path, not the bundle's."""

from __future__ import annotations

import sys

import pytest

from auto_review._frozen import (
    bundle_dir,
    host_environ,
    is_frozen,
    own_executable,
    tie_to_bootloader,
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

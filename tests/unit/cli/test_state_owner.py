"""Host-side commands use the state dir as its owner: root becomes it, anyone else must be it.

The switch itself runs in a forked child (it is for the rest of the process), as root only.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from auto_review import sandbox
from auto_review.cli._state import become_owner, owner_to_become
from auto_review.errors import StoreError

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only root may switch to another uid")
SERVICE_UID, SERVICE_GID = 4242, 4243  # no passwd entries: numeric ids throughout


def _state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return state


def test_a_state_dir_of_another_user_is_refused_naming_its_owner_and_the_fix(
    tmp_path: Path,
) -> None:
    state = _state(tmp_path)
    owner = state.stat().st_uid
    other = SERVICE_UID if owner != SERVICE_UID else SERVICE_GID
    with pytest.raises(StoreError) as refused:
        owner_to_become(state, euid=other)
    message = refused.value.message
    assert f"{state} belongs to" in message
    assert f"uid {owner})" in message or f"uid {owner} " in message
    assert "run this command as" in message
    assert "\n" not in message
    assert owner_to_become(state, euid=owner) is None


def test_root_becomes_the_owner_of_a_state_dir_of_another_uid(tmp_path: Path) -> None:
    state = _state(tmp_path)
    if os.geteuid() == 0:
        os.chown(state, SERVICE_UID, SERVICE_GID)
    info = state.stat()
    assert info.st_uid != 0
    assert owner_to_become(state, euid=0) == (info.st_uid, info.st_gid)


def test_a_missing_state_dir_is_left_to_the_store_to_create(tmp_path: Path) -> None:
    assert owner_to_become(tmp_path / "absent", euid=0) is None


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_state_dir_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    state = _state(tmp_path)
    state.chmod(mode)
    with pytest.raises(StoreError, match=rf"writable by others \(mode {mode:04o}\): chmod 0700"):
        owner_to_become(state, euid=state.stat().st_uid)


def test_a_state_dir_that_is_a_symlink_or_a_file_is_refused(tmp_path: Path) -> None:
    real = _state(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(StoreError, match=rf"is a symlink: set AR_STATE_DIR .*\({real}\)"):
        owner_to_become(link, euid=0)
    plain = tmp_path / "file"
    plain.write_text("")
    with pytest.raises(StoreError, match="is not a directory"):
        owner_to_become(plain, euid=os.geteuid())


def _in_child(state: Path) -> dict[str, object]:
    """Run ``become_owner(state)`` in a forked child; what it saw afterwards, as JSON."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        os.close(read)
        try:
            become_owner(state)
            # Bytes: the new uid may not reach the codecs of the suite's interpreter.
            with open("/proc/self/status", "rb") as status:
                caps = next(ln.split()[1] for ln in status if ln.startswith(b"CapEff:")).decode()
            seen: dict[str, object] = {
                "uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups(),
                "cap_eff": caps,
            }  # fmt: skip
        except StoreError as exc:
            seen = {"error": exc.message, "uid": os.getresuid()}
        except BaseException as exc:  # never back into pytest in the child
            seen = {"unexpected": repr(exc)}
        os.write(write, json.dumps(seen).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


@ROOT_ONLY
def test_root_switches_every_id_and_its_groups_to_the_state_dirs_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state(tmp_path)
    os.chown(state, SERVICE_UID, SERVICE_GID)
    os.setgroups([0, 4])  # supplementary groups the switch must not keep
    try:
        # The suite's interpreter may be root-only (root's pyenv): that check has its own test.
        monkeypatch.setattr(sandbox, "interpreter_paths", tuple)
        seen = _in_child(state)
    finally:
        os.setgroups([])
    assert seen == {
        "uid": [SERVICE_UID] * 3,
        "gid": [SERVICE_GID] * 3,
        "groups": [SERVICE_GID],
        "cap_eff": "0000000000000000",
    }


@ROOT_ONLY
def test_root_stays_root_on_its_own_state_dir(tmp_path: Path) -> None:
    assert _in_child(_state(tmp_path))["uid"] == [0, 0, 0]


@ROOT_ONLY
def test_a_python_the_owner_cannot_read_is_refused_after_the_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state(tmp_path)
    os.chown(state, SERVICE_UID, SERVICE_GID)
    closed = tmp_path / "root-only-install"
    closed.mkdir(mode=0o700)
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    monkeypatch.setattr(sandbox, "interpreter_paths", lambda: (str(closed),))
    seen = _in_child(state)
    assert seen["uid"] == [SERVICE_UID] * 3
    assert f"cannot read {closed}: install auto-review where that user can read it" in str(
        seen["error"]
    )

"""Store against files a compromised gateway planted in the state dir (THREAT-MODEL A5).

Operators run host-side commands, often as root, on the directory the confined gateway writes:
a symlink, FIFO or hard link planted for the database or its side files must be refused, not
followed (a root chmod, write or create through it lands outside the state dir).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from auto_review import store as store_module
from auto_review.errors import StoreError
from auto_review.store import DATABASE_NAME, Store


def _state_with_database(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    Store.open(state / DATABASE_NAME).close()
    return state


def test_store_refuses_a_symlink_planted_for_the_database(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    outside = tmp_path / "outside" / "created-by-root"
    outside.parent.mkdir()
    (state / DATABASE_NAME).symlink_to(outside)
    with pytest.raises(StoreError, match="not a regular file"):
        Store.open(state / DATABASE_NAME)
    assert not outside.exists()
    with pytest.raises(StoreError, match="not a regular file"):
        Store.inspect(state / DATABASE_NAME)


def test_store_read_refuses_a_database_swapped_for_a_symlink(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = Store.open(state / DATABASE_NAME)
    try:
        other = Store.open(tmp_path / "other.sqlite3")
        other.close()
        (state / DATABASE_NAME).unlink()
        (state / DATABASE_NAME).symlink_to(tmp_path / "other.sqlite3")
        with pytest.raises(StoreError, match="not a regular file"), store.read():
            pass
    finally:
        store.close()


@pytest.mark.parametrize("side", ["-wal", "-shm"])
def test_store_refuses_a_symlinked_side_file_and_leaves_its_target_alone(
    tmp_path: Path, side: str
) -> None:
    state = _state_with_database(tmp_path)
    outside = tmp_path / "victim"
    outside.write_bytes(b"root's file\n")
    outside.chmod(0o644)
    Path(f"{state / DATABASE_NAME}{side}").symlink_to(outside)
    # SQLite opens its side files with O_NOFOLLOW; the chmod after opening must not follow.
    with pytest.raises(StoreError):
        Store.open(state / DATABASE_NAME)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert outside.read_bytes() == b"root's file\n"


def test_store_refuses_a_hard_linked_database(tmp_path: Path) -> None:
    state = _state_with_database(tmp_path)
    os.link(state / DATABASE_NAME, tmp_path / "second-name")
    with pytest.raises(StoreError, match="links"):
        Store.open(state / DATABASE_NAME)


def test_store_does_not_hang_on_a_fifo_planted_for_the_database(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    fifo = state / DATABASE_NAME
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def inspect() -> None:
        try:
            Store.inspect(fifo)
            outcome.append(None)
        except BaseException as exc:  # reported to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=inspect, daemon=True)
    worker.start()
    worker.join(timeout=5)
    hung = worker.is_alive()
    if hung:  # unblock the reader so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=5)
    assert not hung, "Store.inspect blocked on a FIFO"
    assert isinstance(outcome[0], StoreError)


def test_store_creates_nothing_through_a_symlink_swapped_in_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway runs alongside the host-side command and may win the race between the check
    # and SQLite's open: SQLite must then not create the file the symlink names.
    state = tmp_path / "state"
    state.mkdir()
    outside = tmp_path / "outside-created-by-root"
    checked = store_module._refuse_planted

    def check_then_swap(path: str) -> None:
        checked(path)
        os.unlink(path)
        os.symlink(outside, path)

    monkeypatch.setattr(store_module, "_refuse_planted", check_then_swap)
    with pytest.raises(StoreError):
        Store.open(state / DATABASE_NAME)
    assert not outside.exists()

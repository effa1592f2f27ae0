"""Landlock on the real kernel: each denial beside the access that must still work."""

from __future__ import annotations

import errno
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import in_child, require_landlock

from auto_review.sandbox import landlock, limits
from auto_review.sandbox.errors import SandboxPolicyInvalid

pytestmark = pytest.mark.sandbox


def _errno(action: object) -> int:
    try:
        action()  # type: ignore[operator]
    except OSError as exc:
        return exc.errno or -1
    return 0


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "file.txt").write_text("readable")
    (tmp_path / "rw").mkdir()
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "secret.txt").write_text("secret")
    return tmp_path


def test_fs_rules_allow_listed_reads_and_writes_and_deny_the_rest(tree: Path) -> None:
    require_landlock(1)

    def confined() -> dict[str, object]:
        limits.set_no_new_privs()
        result = landlock.restrict(
            landlock.LandlockRules(read_paths=(str(tree / "ro"),), write_paths=(str(tree / "rw"),))
        )
        return {
            "abi": result.abi,
            "read_ro": (tree / "ro" / "file.txt").read_text(),
            "write_rw": _errno(lambda: (tree / "rw" / "new.txt").write_text("x")),
            "read_hidden": _errno((tree / "hidden" / "secret.txt").read_text),
            "write_ro": _errno(lambda: (tree / "ro" / "new.txt").write_text("x")),
            "read_etc": _errno(lambda: Path("/etc/hostname").read_text()),
        }

    seen = in_child(confined)
    assert seen["abi"] >= 1
    assert seen["read_ro"] == "readable"
    assert seen["write_rw"] == 0
    assert seen["read_hidden"] == errno.EACCES
    assert seen["write_ro"] == errno.EACCES
    assert seen["read_etc"] == errno.EACCES


def test_file_rule_masks_directory_only_rights(tree: Path) -> None:
    require_landlock(1)

    def confined() -> str:
        limits.set_no_new_privs()
        landlock.restrict(
            landlock.LandlockRules(read_paths=(str(tree / "ro" / "file.txt"),), write_paths=())
        )
        return (tree / "ro" / "file.txt").read_text()

    assert in_child(confined) == "readable"


def test_rule_path_swapped_for_a_symlink_is_refused_unless_it_may_be_followed(
    tree: Path,
) -> None:
    require_landlock(1)
    (tree / "rw").rmdir()
    (tree / "rw").symlink_to(tree / "hidden")  # swapped in after the policy was checked

    def confined(follow: frozenset[str]) -> str:
        limits.set_no_new_privs()
        try:
            landlock.restrict(
                landlock.LandlockRules((), write_paths=(str(tree / "rw"),), follow=follow)
            )
        except SandboxPolicyInvalid as exc:
            return f"refused: {exc.message}"
        return (tree / "hidden" / "secret.txt").read_text()

    assert "ELOOP" in in_child(lambda: confined(frozenset()))
    # Positive control: a trusted (system view) path still follows its links.
    assert in_child(lambda: confined(frozenset({str(tree / "rw")}))) == "secret"


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
    yield socks[0].getsockname()[1], socks[1].getsockname()[1]
    for sock in socks:
        sock.close()


def _connect(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port))


def test_tcp_connect_is_limited_to_the_listed_ports(listeners: tuple[int, int]) -> None:
    require_landlock(4)
    allowed, denied = listeners

    def confined() -> dict[str, int]:
        before = _connect(denied)
        limits.set_no_new_privs()
        landlock.restrict(
            landlock.LandlockRules(
                read_paths=(), write_paths=(), connect_ports=(allowed,), bind_ports=()
            )
        )
        return {"before": before, "allowed": _connect(allowed), "denied": _connect(denied)}

    seen = in_child(confined)
    assert seen["before"] == 0
    assert seen["allowed"] == 0
    assert seen["denied"] == errno.EACCES


def test_ipc_scoping_blocks_signals_and_abstract_sockets_outside_the_domain() -> None:
    require_landlock(6)
    name = f"\0auto-review-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen(4)
    parent = os.getpid()

    def reach() -> int:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            return sock.connect_ex(name)

    def confined() -> dict[str, int]:
        before = {"uds": reach(), "signal": _errno(lambda: os.kill(parent, 0))}
        limits.set_no_new_privs()
        landlock.restrict(landlock.LandlockRules(read_paths=(), write_paths=()))
        own = os.fork()
        if own == 0:
            signal.pause()
            os._exit(0)
        own_signal = _errno(lambda: os.kill(own, signal.SIGKILL))
        os.waitpid(own, 0)
        return {
            **{f"before_{k}": v for k, v in before.items()},
            "uds": reach(),
            "signal": _errno(lambda: os.kill(parent, 0)),
            "own_signal": own_signal,
        }

    try:
        seen = in_child(confined)
    finally:
        server.close()
    assert seen["before_uds"] == 0
    assert seen["before_signal"] == 0
    assert seen["uds"] == errno.EPERM
    assert seen["signal"] == errno.EPERM
    assert seen["own_signal"] == 0  # a process may still signal its own children


def test_restrict_reports_nothing_applied_without_landlock() -> None:
    assert landlock.restrict(landlock.LandlockRules((), ()), abi=0) == landlock.LandlockResult(0)

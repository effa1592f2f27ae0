"""The ctypes layer: every failure becomes SandboxSyscallError with the call's own errno."""

from __future__ import annotations

import ast
import errno
import json
import os
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import in_child

from auto_review.sandbox import SandboxSyscallError, kernel
from auto_review.sandbox.errors import SandboxSetupError

SANDBOX = Path(__file__).resolve().parents[3] / "src" / "auto_review" / "sandbox"


def test_failed_call_raises_with_its_errno_even_after_a_stale_errno() -> None:
    os.environ.get("PATH")  # unrelated libc activity first (the landlock-package bug, E3)
    with pytest.raises(SandboxSyscallError) as caught:
        kernel.umount2("/definitely/not/a/mount/point", 0)
    assert caught.value.errno in (errno.ENOENT, errno.EPERM)
    assert caught.value.name == "umount2"
    assert isinstance(caught.value, SandboxSetupError)


def test_successful_call_returns_its_value_not_an_error() -> None:
    assert kernel.prctl(kernel.PR_GET_NO_NEW_PRIVS) in (0, 1)
    assert kernel.landlock_abi_version() >= 0


def test_openat2_refuses_symlink_escapes_beneath_a_directory(tmp_path: Path) -> None:
    (tmp_path / "inside.txt").write_text("ok")
    (tmp_path / "escape").symlink_to("/etc/hostname")
    dirfd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        resolve = kernel.RESOLVE_BENEATH | kernel.RESOLVE_NO_SYMLINKS | kernel.RESOLVE_NO_MAGICLINKS
        fd = kernel.openat2(dirfd, "inside.txt", os.O_RDONLY | os.O_CLOEXEC, resolve)
        assert os.read(fd, 10) == b"ok"
        os.close(fd)
        with pytest.raises(SandboxSyscallError) as caught:
            kernel.openat2(dirfd, "escape", os.O_RDONLY | os.O_CLOEXEC, resolve)
        assert caught.value.errno == errno.ELOOP
        with pytest.raises(SandboxSyscallError) as caught:
            kernel.openat2(dirfd, "../etc/hostname", os.O_RDONLY | os.O_CLOEXEC, resolve)
        assert caught.value.errno == errno.EXDEV
    finally:
        os.close(dirfd)


def test_close_range_closes_only_the_given_range() -> None:
    def child() -> list[bool]:
        low, high, keep = 900, 901, 902
        for fd in (low, high, keep):
            os.dup2(0, fd)
        kernel.close_range(low, high)
        alive = []
        for fd in (low, high, keep):
            try:
                os.fstat(fd)
                alive.append(True)
            except OSError:
                alive.append(False)
        return alive

    assert in_child(child) == [False, False, True]


def test_sandbox_package_imports_nothing_else_of_auto_review() -> None:
    for module in SANDBOX.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("auto_review"):
                    assert name.startswith("auto_review.sandbox"), (module.name, name)


def test_every_sandbox_module_declares_all_and_stays_small() -> None:
    for module in SANDBOX.glob("*.py"):
        text = module.read_text()
        assert "__all__" in text, module.name
        assert text.count("\n") < 420, module.name


def test_capget_reads_back_an_emptied_capability_set() -> None:
    def child() -> list[int]:
        before = kernel.capget()
        kernel.capset_clear()
        return [*before, *kernel.capget()]

    seen = in_child(child)
    assert seen[3:] == [0, 0, 0]
    if os.geteuid() == 0:
        assert seen[0] != 0  # positive control: root had effective capabilities before


def test_fork_single_threaded_child_runs_python_and_its_parent_reaps_it() -> None:
    def child() -> dict[str, int]:
        read_fd, write_fd = os.pipe()
        pid = kernel.fork_single_threaded()
        if pid == 0:  # pragma: no cover - the grandchild
            os.close(read_fd)
            message = json.dumps({"pid": os.getpid(), "ppid": os.getppid()})
            os.write(write_fd, message.encode())
            os._exit(7)
        os.close(write_fd)
        seen = json.loads(os.read(read_fd, 4096))
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        return {**seen, "forked": pid, "me": os.getpid(), "code": os.waitstatus_to_exitcode(status)}

    seen = in_child(child)
    assert seen["pid"] == seen["forked"] != seen["me"]
    assert seen["ppid"] == seen["me"]
    assert seen["code"] == 7

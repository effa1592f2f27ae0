"""Read files of an untrusted checkout without ever leaving it.

A cloned repository may hold symlinks to ``/etc/passwd`` or ``.git/config``, FIFOs, device-like
names, ``..`` tricks and 2 GiB sparse files. ``read_beneath`` opens a relative path beneath a root
directory so that no symlink (and no ``/proc`` magic link) is followed at any component, refuses
anything that is not a regular file, and reads at most ``max_bytes``. It uses ``openat2`` with
``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`` through the sandbox's kernel
layer when the kernel has it, else walks the path one component at a time with ``O_NOFOLLOW``
relative to the previous directory's fd (equivalent for a tree that contains no mount points).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ReadResult", "is_real_dir", "is_safe_relpath", "read_beneath"]

_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
_DIR_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY


@dataclass(frozen=True)
class ReadResult:
    data: bytes
    truncated: bool
    size: int


def is_safe_relpath(rel: str) -> bool:
    """A non-empty relative path with no ``..``, NUL, or empty component (checked lexically)."""
    if not rel or "\0" in rel or rel.startswith("/"):
        return False
    parts = rel.split("/")
    return all(part not in ("", ".", "..") for part in parts)


def _open_openat2(root_fd: int, rel: str) -> int | None:
    """The fd via openat2, or None when this kernel/build cannot do openat2."""
    try:
        from auto_review.sandbox import kernel  # noqa: PLC0415 (optional layer, resolved late)
        from auto_review.sandbox.errors import SandboxSyscallError  # noqa: PLC0415
    except ImportError:
        return None
    resolve = kernel.RESOLVE_BENEATH | kernel.RESOLVE_NO_SYMLINKS | kernel.RESOLVE_NO_MAGICLINKS
    try:
        return kernel.openat2(root_fd, rel, _FILE_FLAGS, resolve)
    except SandboxSyscallError as exc:
        code = exc.errno or errno.EIO
        if code in (errno.ENOSYS, errno.EPERM):
            return None  # no openat2 here (old kernel or seccomp): use the per-component walk
        raise OSError(code, os.strerror(code), rel) from None


def _walk_dirs(fd: int, parts: list[str]) -> int:
    """The directory ``parts`` below ``fd`` (which this takes over), opened one component at a
    time without following a symlink (ELOOP/ENOTDIR on one, or on a file on the way)."""
    try:
        for part in parts:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_walk(root_fd: int, rel: str) -> int:
    parts = rel.split("/")
    fd = _walk_dirs(os.dup(root_fd), parts[:-1])
    try:
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def is_real_dir(root: Path, rel: str) -> bool:
    """Whether ``root/rel`` is a directory reached through no symlink at any component."""
    if not is_safe_relpath(rel):
        return False
    try:
        os.close(_walk_dirs(os.open(root, _DIR_FLAGS), rel.split("/")))
    except OSError:
        return False
    return True


def read_beneath(root: Path, rel: str, *, max_bytes: int) -> ReadResult | None:
    """Up to ``max_bytes`` of the regular file ``root/rel``; None if missing, refused or special."""
    if not is_safe_relpath(rel):
        return None
    try:
        root_fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return None
    try:
        try:
            fd = _open_openat2(root_fd, rel)
            if fd is None:
                fd = _open_walk(root_fd, rel)
        except OSError:
            return None  # ELOOP (a symlink), EXDEV (escape), ENOENT, ENOTDIR, EACCES ...
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            chunks: list[bytes] = []
            left = max_bytes
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
            return ReadResult(data, info.st_size > len(data), info.st_size)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)

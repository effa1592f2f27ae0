"""Remove a directory a job wrote: its scratch dir (outside the full tier), a clone's checkout.

    remove_tree(path) -> bool   True when ``path`` no longer exists

The job owned everything in the dir and chose its shape, so ``shutil.rmtree`` is not enough:
its walk recurses once per level and holds an fd per level (a job nesting directories a few
thousand deep made it raise RecursionError out of the caller's cleanup, losing the job's result
and leaving the dir), and it gives up on a directory the job made unreadable or unwritable (as
an ordinary user, up to the disk cap of files stayed behind after every such job). This walk
is iterative and holds one directory fd at a time, going back up through ``..`` checked against
the device and inode it came down from; it never follows a symlink (every open is O_NOFOLLOW),
and gives directories back their owner's rwx where the job took it away.

Nothing else may write to the dir while this runs: callers call it once the job's tree is dead
(the supervisor's tree kill) and no other job may write there (a scratch dir is in no other
job's Landlock rules; a checkout is bound read-only to the analysis jobs that follow).
Errors leave the rest in place and return False; nothing is raised.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Final

__all__ = ["remove_tree"]

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OWNER_RWX: Final = stat.S_IRWXU


def _open_dir(parent_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        # A symlink would have failed with ELOOP above, and nothing renames entries meanwhile,
        # so this chmod (which follows links) meets the directory the open refused.
        os.chmod(name, _OWNER_RWX, dir_fd=parent_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


def _usable(fd: int) -> None:
    """Give the directory its owner's rwx back (listing needs r, unlinking w and x)."""
    mode = os.fstat(fd).st_mode
    if mode & _OWNER_RWX != _OWNER_RWX:
        with contextlib.suppress(OSError):  # not ours (root-started: root needs none of it)
            # Never group or other write: under the sandbox's seccomp filter (the confined
            # gateway removes job dirs) such a chmod is refused (F93).
            os.fchmod(fd, stat.S_IMODE(mode | _OWNER_RWX) & ~0o022)


def _first_entry(fd: int) -> os.DirEntry[str] | None:
    with os.scandir(fd) as entries:
        return next(entries, None)


def _empty(fd: int) -> None:
    """Remove the tree below ``fd`` (which stays open), one open directory at a time."""
    # (st_dev, st_ino, name) of each directory between fd's start and the current one.
    above: list[tuple[int, int, str]] = []
    current = os.dup(fd)
    try:
        _usable(current)
        while True:
            entry = _first_entry(current)
            if entry is not None and entry.is_dir(follow_symlinks=False):
                child = _open_dir(current, entry.name)
                here = os.fstat(current)
                above.append((here.st_dev, here.st_ino, entry.name))
                os.close(current)
                current = child
                _usable(current)
            elif entry is not None:
                os.unlink(entry.name, dir_fd=current)
            elif above:
                parent = os.open("..", _DIR_FLAGS, dir_fd=current)
                dev, ino, name = above.pop()
                seen = os.fstat(parent)
                os.close(current)
                current = parent
                if (seen.st_dev, seen.st_ino) != (dev, ino):
                    raise OSError("scratch dir changed while it was removed")
                os.rmdir(name, dir_fd=current)
            else:
                return
    finally:
        os.close(current)


def remove_tree(path: str) -> bool:
    """Remove ``path`` and all below it; True when it is gone (see the module docstring)."""
    head, name = os.path.split(os.path.abspath(path))
    try:
        parent = os.open(head, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return not os.path.lexists(path)
    try:
        try:
            top = _open_dir(parent, name)
        except FileNotFoundError:
            return True
        try:
            _empty(top)
        finally:
            os.close(top)
        os.rmdir(name, dir_fd=parent)
        return True
    except OSError:
        return False
    finally:
        os.close(parent)

"""What changes when auto-review runs from the one-file build, and how child programs undo it.

The PyInstaller bootloader unpacks the bundle into a private directory (``sys._MEIPASS``), puts
that directory first on ``LD_LIBRARY_PATH`` (saving any earlier value as
``LD_LIBRARY_PATH_ORIG``) and passes ``_PYI_*`` variables to the Python process. A host program
started with that environment (``git``, ``ssh``) would load the bundle's OpenSSL, zlib or
libpython instead of its own, which breaks it in subtle ways, and a nested ``auto-review`` would
take itself for a worker of this process. ``host_environ`` returns the environment a host
program must get instead. Out of scope: deciding which variables a child may see at all; the
caller (or the sandbox's empty environment) does that.

The bootloader also stays behind as this process's parent. It forwards SIGTERM and SIGINT, but a
SIGKILL to it (``kill -9`` of the main pid, a test harness, a supervisor's stop timeout) would
orphan this process: it would keep the port, the database and the unpacked directory.
``tie_to_bootloader`` makes the kernel end this process when the bootloader dies.

The unpacked files are loaded lazily for as long as the process runs (extensions, re-executed
workers), by path. If another user can rename an entry on that path (``TMPDIR`` pointing into a
directory they own, or one writable by others without the sticky bit), they can put their own
libraries there and this process loads them. ``unpack_dir_problem`` says so, and
``refuse_unsafe_unpack_dir`` stops the application before it loads anything more. Age-based
clean-up of ``/tmp`` (systemd-tmpfiles, 10 days on Fedora, RHEL and Debian 13) would delete the
unpacked files of a long-running process, and then the directory itself, whose name another
user could then take; ``hold_unpack_dir`` keeps it out, with the lock systemd-tmpfiles honours.

This module imports nothing of the project, so any layer may use it.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "BUNDLE_VARIABLE_PREFIXES",
    "bundle_dir",
    "hold_unpack_dir",
    "host_environ",
    "is_frozen",
    "own_executable",
    "refuse_unsafe_unpack_dir",
    "tie_to_bootloader",
    "unpack_dir_problem",
]

_LIBRARY_PATH = "LD_LIBRARY_PATH"
# The bootloader's copy of the library path it found at start; absent when there was none.
_LIBRARY_PATH_SAVED = "LD_LIBRARY_PATH_ORIG"
# Variables the bootloader sets for its own children (bundle location, worker handshake).
BUNDLE_VARIABLE_PREFIXES = ("_PYI_", "_MEIPASS")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Descriptors that keep a lock for the life of the process; never closed on purpose.
_HELD: list[int] = []


def is_frozen() -> bool:
    """True when running from the PyInstaller build rather than from a Python installation."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def bundle_dir() -> Path | None:
    """The directory the one-file build was unpacked into, or None when not frozen.

    A sandbox that runs code of this build must show it read-only at the same path.
    """
    if not is_frozen():
        return None
    return Path(getattr(sys, "_MEIPASS"))  # noqa: B009 - set only by the bootloader


def own_executable() -> Path:
    """The file to start for another auto-review: the one-file build, or this interpreter."""
    return Path(sys.executable)


def host_environ(environ: Mapping[str, str], *, frozen: bool | None = None) -> dict[str, str]:
    """A copy of ``environ`` fit for a host program: the bundle's library path and markers gone.

    Restores ``LD_LIBRARY_PATH`` to the value the bootloader saved, or removes it when there was
    none, and drops the bootloader's ``_PYI_*``/``_MEIPASS*`` variables. Outside a one-file
    build the copy is unchanged (``frozen`` overrides the detection, for tests).
    """
    env = dict(environ)
    if not (is_frozen() if frozen is None else frozen):
        return env
    saved = env.pop(_LIBRARY_PATH_SAVED, None)
    if saved:
        env[_LIBRARY_PATH] = saved
    else:
        env.pop(_LIBRARY_PATH, None)
    for name in [n for n in env if n.startswith(BUNDLE_VARIABLE_PREFIXES)]:
        del env[name]
    return env


def tie_to_bootloader() -> bool:
    """In the one-file build on Linux: die with SIGKILL when the bootloader parent dies.

    Returns True when the tie is in place. Called by the build's runtime hook before any import
    of the application (packaging/rthooks); the parent must be this file's bootloader, so a
    re-executed worker (whose parent is the application) is never tied. Not inherited by forked
    children, so sandboxes are unaffected. A SIGKILL that lands in the few milliseconds between
    the bootloader's fork and this call is not caught.
    """
    if not is_frozen() or not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    if not _is_bootloader(parent):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.prctl.restype = ctypes.c_int
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0) != 0:
        return False
    # The parent may have died before the tie existed: then nobody would ever send the signal.
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def unpack_dir_problem(path: str, euid: int | None = None) -> str | None:
    """Why a user other than root and ``euid`` could swap the files under ``path``, or None.

    Every directory from ``/`` down to ``path`` and every symlink on the way must belong to root
    or to ``euid``; a directory that group or others may write needs the sticky bit; ``path``
    itself must be ``euid``'s and writable by it alone. Checked as given and as resolved.
    """
    me = os.geteuid() if euid is None else euid
    for candidate in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        parts = Path(candidate).parts
        for depth in range(1, len(parts) + 1):
            current = os.path.join(*parts[:depth])
            try:
                info = os.lstat(current)
            except OSError as exc:
                return f"{current}: {exc.strerror}"
            last = depth == len(parts)
            owners = (me,) if last else (0, me)
            if info.st_uid not in owners:
                return f"{current} belongs to uid {info.st_uid}"
            if stat.S_ISLNK(info.st_mode):
                continue  # its target is checked on the resolved path
            shared = info.st_mode & 0o022
            if shared and (last or not info.st_mode & stat.S_ISVTX):
                return f"{current} is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def refuse_unsafe_unpack_dir() -> None:
    """In the one-file build's application process: exit when another user could swap the
    unpacked files (``unpack_dir_problem``) before this process loads more of them.

    closes: a local user who owns (or may write) the directory ``TMPDIR`` names replacing the
    unpacked directory of a root-run ``auto-review`` and having it load their libraries (F91).
    """
    bundle = bundle_dir()
    if bundle is None or not _is_bootloader(os.getppid()):
        return  # re-executed workers reuse the directory their application process checked
    problem = unpack_dir_problem(str(bundle))
    if problem is not None:
        raise SystemExit(
            f"auto-review: refusing to run from {bundle}, which another user could change: "
            f"{problem}. Set TMPDIR to a directory only root or this user can write "
            "(docs/RELEASE.md)."
        )


def hold_unpack_dir() -> bool:
    """In the one-file build's application process: hold a shared BSD lock on the unpacked
    directory until exit, which systemd-tmpfiles' age-based clean-up skips (tmpfiles.d(5)).

    True when held. The descriptor is close-on-exec; the bootloader removes the directory
    after this process is gone, lock and all.

    closes: a running root ``auto-review`` whose unpacked files, then directory, were removed
    by /tmp's age-based clean-up, so that the next lazy import or worker failed, or loaded
    files another user had put at the same path in /tmp (F92).
    """
    bundle = bundle_dir()
    if bundle is None or not _is_bootloader(os.getppid()):
        return False
    try:
        fd = os.open(bundle, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while systemd-tmpfiles looks at it
    except OSError:
        os.close(fd)
        return False
    _HELD.append(fd)
    return True


def _is_bootloader(pid: int) -> bool:
    # The one-file parent runs this same file but never loads libpython; the app process (and any
    # fork of it, such as a sandbox supervisor that starts a re-executed worker) has it mapped.
    try:
        same_file = os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(sys.executable)
        with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as maps:
            runs_python = any("/libpython3" in line for line in maps)
    except OSError:
        return False
    return same_file and not runs_python

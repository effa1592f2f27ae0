"""The state database as host-side commands open it: as the state dir's owner, never as root.

The confined gateway owns the state dir (the systemd unit's service user, or uid 65534 for a
root-started restricted tier), and operators run ``jobs``, ``history``, ``learnings`` and
``review once`` on it, often as root. Root made the database there on first use, owned by root,
which the gateway could then not open; and a symlink the gateway swapped in for the database
between ``Store``'s checks and SQLite's open was opened with root's rights. So root becomes the
owner before anything in the dir is touched, for the rest of the process (REDTEAM F60).
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
from pathlib import Path

from auto_review import sandbox
from auto_review.errors import StoreError
from auto_review.sandbox.identity import share_read_only
from auto_review.settings import Settings
from auto_review.store import Store

__all__ = ["become_owner", "open_state_store", "owner_to_become"]


def open_state_store(settings: Settings) -> Store:
    """The store in the settings' state dir, opened as the dir's owner (root drops to it)."""
    state = settings.resolved_state_dir()
    become_owner(state)
    return Store.in_state_dir(state)


def owner_to_become(state: Path, euid: int) -> tuple[int, int] | None:
    """The (uid, gid) a process of ``euid`` must switch to before using ``state``; None: stay.

    Refuses a state dir this process must not use: a symlink or not a directory, one others
    may write (they could plant files the owner's commands then trust), or, unless root, one
    of another owner (files made here would be ours, not the gateway's)."""
    try:
        info = os.lstat(state)
    except FileNotFoundError:
        return None  # Store.open makes it, owned by whoever runs this
    except OSError as exc:
        raise StoreError(f"cannot inspect the state directory {state}: {exc.strerror}") from exc
    if stat.S_ISLNK(info.st_mode):
        raise StoreError(
            f"the state directory {state} is a symlink: set AR_STATE_DIR to the directory "
            f"itself ({os.path.realpath(state)})"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StoreError(f"the state directory {state} is not a directory: set AR_STATE_DIR")
    if info.st_mode & 0o022:
        raise StoreError(
            f"the state directory {state} of {_who(info.st_uid)} is writable by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): chmod 0700 {state}"
        )
    if info.st_uid == euid:
        return None
    if euid != 0:
        raise StoreError(
            f"the state directory {state} belongs to {_who(info.st_uid)}, not to this user "
            f"({_who(euid)}): run this command as {_name(info.st_uid, info.st_gid)} or as root"
        )
    return info.st_uid, info.st_gid


def become_owner(state: Path) -> None:
    """Switch every id of this process to the owner of ``state`` when root must (see above).

    closes: root-owned files in the gateway's state dir, and root's rights on a symlink the
    gateway swaps in for the database between ``Store``'s checks and SQLite's open (F60)."""
    target = owner_to_become(state, os.geteuid())
    if target is None:
        return
    uid, gid = target
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(uid)
    except KeyError:
        entry = None
    interpreter = sandbox.interpreter_paths()
    meipass = getattr(sys, "_MEIPASS", None)
    if isinstance(meipass, str):
        # The one-file build imports lazily from its unpacked files, which PyInstaller makes
        # root-only; shared read-only as for a root-started restricted-tier job (ADR 0010).
        share_read_only(meipass)
    try:
        # Groups first, then gid, then uid: after the uid change we may change none of them.
        if entry is None:
            os.setgroups([gid])
        else:
            os.initgroups(entry.pw_name, gid)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise StoreError(
            f"cannot become {_who(uid)}, the owner of the state directory {state}: "
            f"{exc.strerror}; run this command as {_name(uid, gid)}"
        ) from exc
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise StoreError(f"could not switch every id to {_who(uid)} before using {state}")
    # Modules are imported as they are first used: a Python the new user cannot read would
    # fail later with an ImportError naming no cause.
    unreadable = [p for p in interpreter if not os.access(p, os.R_OK)]
    if unreadable:
        raise StoreError(
            f"this command now runs as {_who(uid)}, the owner of the state directory {state}, "
            f"who cannot read {unreadable[0]}: install auto-review where that user can read it "
            "(as its gateway needs), or run this command as that user"
        )


def _who(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _name(uid: int, gid: int) -> str:
    """How to run a command as ``uid``: by name where it has one."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid} (setpriv --reuid={uid} --regid={gid} --clear-groups)"
    return f"user {name} (sudo -u {name})"

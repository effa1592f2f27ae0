"""The job's host identity where no user namespace maps it (restricted tier, started by root).

Once ``become_host_user`` returns, the calling process has no supplementary groups, its real,
effective, saved and file-system uid and gid are all ``host_id`` (read back), and its bounding
set is empty (dropped first, while root still holds CAP_SETPCAP; the uid change then empties
the permitted, effective and ambient sets, capabilities(7) "Effect of user ID changes").
``require_access`` refuses, with the fix, a rule path that identity cannot use as asked;
``HostIdentity`` words such refusals (here and in landlock.py) for the tier in use.
``share_read_only`` makes a root-owned tree of ours (a one-file build's unpacked files) readable
by that identity, never writable.

Why the whole identity and not only the real uid: RLIMIT_NPROC is charged to the real user, so
changing only it would make the limit bind while keeping root's file access; but an euid that
differs from the real uid makes every execve secure-exec (AT_SECURE), so glibc strips TMPDIR and
LD_LIBRARY_PATH from the job's environment, and dash and bash reset their euid to the real uid
at start, so anything run through a shell is the unprivileged user anyway (docs/adr/0010).

Out of scope: the full tier, whose job gets its own user namespace (namespaces.py), and which
host paths the operator makes usable by ``host_id`` (the refusal says how).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from auto_review.sandbox import kernel, namespaces
from auto_review.sandbox.errors import SandboxPolicyInvalid

__all__ = [
    "HostIdentity",
    "become_host_user",
    "host_uid",
    "require_access",
    "restricted_job_id",
    "share_read_only",
]


@dataclass(frozen=True)
class HostIdentity:
    """The host uid whose permissions a sandboxed process's file access is checked against,
    and how it got it, so that a refusal names that uid and a fix that works in its tier."""

    uid: int
    full_tier: bool
    # Started by root: the process runs as ROOT_JOB_HOST_ID (a user namespace maps it there in
    # the full tier; it switched to it in the restricted tier).
    root_started: bool

    def who(self) -> str:
        """``uid N`` and where N comes from."""
        if self.full_tier:
            if self.root_started:
                return f"host uid {self.uid}, to which the full tier maps what root runs"
            return f"host uid {self.uid}, the caller's, to which the full tier maps what it runs"
        if self.root_started:
            return f"uid {self.uid}, the host identity of what root runs in the restricted tier"
        return f"uid {self.uid}"

    def fix(self, grant: str) -> str:
        """How to let that uid in (``grant``: the commands that would), then what else would.

        The full tier is offered only from the restricted tier started by root, where it helps:
        its view's directories above a bind are the sandbox's own, and its writable binds are
        id-mapped to that uid. A user it refuses would be refused by the full tier's binds too.
        """
        fix = f"give uid {self.uid} access ({grant})"
        if not self.root_started:
            return fix
        if self.full_tier:
            return f"{fix}, or run auto-review as an ordinary user (then mapped to that user)"
        return f"{fix}, run auto-review as an ordinary user, or use the full tier"


def _map_to_host(kind: str, ident: int) -> int | None:
    """``ident`` of this user namespace as the initial namespace sees it (None: unmapped)."""
    with open(f"/proc/self/{kind}_map", encoding="ascii") as fh:
        for line in fh:
            inside, outside, count = (int(v) for v in line.split())
            if inside <= ident < inside + count:
                return outside + ident - inside
    return None


def host_uid(uid: int) -> int | None:
    """The host uid behind ``uid`` of this user namespace (itself outside any user namespace)."""
    return _map_to_host("uid", uid)


def restricted_job_id() -> int | None:
    """The id a restricted-tier job switches to: ROOT_JOB_HOST_ID when we are root and it is
    mapped here (in a user namespace that maps only root, e.g. ``unshare --map-root-user``,
    the job cannot switch and stays uid 0, which the posture then reports); None otherwise."""
    if os.geteuid() != 0:
        return None
    if (
        _map_to_host("uid", namespaces.ROOT_JOB_HOST_ID) is None
        or _map_to_host("gid", namespaces.ROOT_JOB_HOST_ID) is None
    ):
        return None
    return namespaces.ROOT_JOB_HOST_ID


def become_host_user(host_id: int, last_cap: int) -> None:
    """closes: a root-started job without a user namespace staying host uid 0, whom
    RLIMIT_NPROC never binds (kernel/fork.c exempts INIT_USER: a fork bomb is unbounded), who
    may write every root-owned file its Landlock rules reach, and may signal root's processes."""
    for cap in range(last_cap + 1):  # while we still hold CAP_SETPCAP
        kernel.prctl(kernel.PR_CAPBSET_DROP, cap)
    namespaces.become(host_id, "setresuid(job host user)")


def _unusable(path: str, mode: int) -> bool:
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        return False  # a missing path gets no rule either
    except OSError:
        return True  # EACCES: a directory above it is not searchable
    return not os.access(path, mode | (os.X_OK if is_dir else 0))


def require_access(read_paths: Iterable[str], write_paths: Iterable[str], host_id: int) -> None:
    """Refuse (``SandboxPolicyInvalid``) when a read path is not readable, or a write path not
    writable, by the calling process's own (real) identity, naming the paths and the fix."""
    bad = [p for p in read_paths if _unusable(p, os.R_OK)]
    bad += [p for p in write_paths if _unusable(p, os.R_OK | os.W_OK)]
    if bad:
        # Called only where root started the restricted tier (the only tier without a user
        # namespace to map the process): see the module docstring.
        who = HostIdentity(host_id, full_tier=False, root_started=True)
        raise SandboxPolicyInvalid(
            f"{', '.join(bad)}: not usable by {who.who()} (read paths need r, write paths rw, "
            f"directories also x); {who.fix(f'chown {host_id}, or setfacl -m u:{host_id}:rwX')}"
        )


def share_read_only(top: str) -> None:
    """Give others read, and search or execute where the owner has it, on ``top`` and every
    file and directory under it; never write. For a tree only root can write (a one-file
    build's unpacked directory: PyInstaller extracts it 0700, its files 0600 or 0700), so
    nothing can be swapped in while this walks; symlinks are skipped, never followed."""
    for parent, dirs, files in os.walk(top):
        for name in (parent, *(os.path.join(parent, n) for n in (*dirs, *files))):
            mode = os.lstat(name).st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = mode | 0o044 | (0o011 if mode & stat.S_IXUSR else 0)
            if stat.S_IMODE(wanted) != stat.S_IMODE(mode):
                os.chmod(name, stat.S_IMODE(wanted))

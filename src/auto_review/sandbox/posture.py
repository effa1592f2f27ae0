"""Posture: what is really enforced, read back from inside the confined process.

``read_back`` runs in the confined process itself (the job, right before exec): /proc/self/status
(NoNewPrivs, Seccomp, capability sets), namespace ids, rlimits. ``read_back_by_syscall`` asks the
kernel for the same security fields directly, for a process whose Landlock rules leave /proc
out (the gateway's re-check of its handoff: the restricted tier mounts no fresh /proc).
``mismatches`` compares a read-back with what the policy demands; startup refuses when it is
non-empty. ``Posture`` is the JSON-serialisable report: the tier requested and effective, and
every control with state on | off | unavailable and the reason.

Out of scope: deciding the tier (probe.py) and applying controls (spawn.py and the step modules).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from auto_review.sandbox import kernel
from auto_review.sandbox.namespaces import NAMESPACES

__all__ = [
    "Control",
    "Expected",
    "Posture",
    "exec_mounted",
    "mismatches",
    "namespace_ids",
    "parse_status",
    "read_back",
    "read_back_by_syscall",
]

State = Literal["on", "off", "unavailable"]
_STATUS_KEYS = {
    "NoNewPrivs": "no_new_privs",
    "Seccomp": "seccomp",
    "CapInh": "cap_inh",
    "CapPrm": "cap_prm",
    "CapEff": "cap_eff",
    "CapBnd": "cap_bnd",
    "CapAmb": "cap_amb",
}
_ID_KEYS = {"Uid": ("uid", "euid", "suid", "fsuid"), "Gid": ("gid", "egid", "sgid", "fsgid")}
_RLIMITS = {
    "cpu": resource.RLIMIT_CPU,
    "address_space": resource.RLIMIT_AS,
    "file_size": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
    "processes": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
}


@dataclass(frozen=True)
class Control:
    """One control and its state, with the reason in words."""

    name: str
    state: State
    reason: str


@dataclass(frozen=True)
class Posture:
    """The enforced posture of one sandbox (serialise with ``to_dict``)."""

    tier_requested: str
    tier_effective: str
    policy: str
    controls: tuple[Control, ...]
    read_back: Mapping[str, Any] = field(default_factory=dict)

    def state(self, name: str) -> State | None:
        """The state of control ``name``, or None if it is not reported."""
        return next((c.state for c in self.controls if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["controls"] = [asdict(c) for c in self.controls]
        data["read_back"] = dict(self.read_back)
        return data


def parse_status(text: str) -> dict[str, int]:
    """The security fields of a /proc/<pid>/status text (capability sets as integers; the
    real, effective, saved and file-system uids and gids as uid, euid, suid, fsuid, gid ...)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in _ID_KEYS:
            out.update(zip(_ID_KEYS[key], (int(v) for v in value.split()), strict=False))
            continue
        name = _STATUS_KEYS.get(key)
        if name is not None:
            value = value.strip()
            out[name] = int(value, 16) if key.startswith("Cap") else int(value)
    return out


def namespace_ids(pid: str = "self") -> dict[str, int]:
    """Inode numbers of the namespaces of ``pid`` (equal ids mean the same namespace)."""
    ids = {}
    for name in NAMESPACES:
        try:
            ids[name] = os.stat(f"/proc/{pid}/ns/{name}").st_ino
        except OSError:
            continue  # a kernel without that namespace type
    return ids


def exec_mounted(write_paths: Iterable[str]) -> list[str]:
    """The writable paths whose mount lets files be mapped executable (no ST_NOEXEC): there
    ld.so can run a dropped file, since Landlock governs execve but not mmap(PROT_EXEC).
    Device nodes are skipped (nothing can be dropped into them); unreadable mounts count."""
    found = []
    for path in write_paths:
        if path.startswith("/dev/"):
            continue
        try:
            noexec = os.statvfs(path).f_flag & os.ST_NOEXEC
        except FileNotFoundError:
            continue
        except OSError:
            noexec = 0
        if not noexec:
            found.append(path)
    return found


def read_back(status_text: str | None = None) -> dict[str, Any]:
    """Read the calling process's enforced state (pass ``status_text`` read via an early fd)."""
    if status_text is None:
        with open("/proc/self/status", encoding="ascii") as fh:
            status_text = fh.read()
    limits = {}
    for name, which in _RLIMITS.items():
        soft = resource.getrlimit(which)[0]
        limits[name] = -1 if soft == resource.RLIM_INFINITY else soft
    return {"status": parse_status(status_text), "rlimits": limits}


def read_back_by_syscall() -> dict[str, int]:
    """NoNewPrivs, Seccomp and the effective and permitted capability sets of the calling
    thread, from prctl(2) and capget(2): the restricted tier grants no read of /proc (it would
    be the host's, with every process's cmdline), and a rule on /proc/self would not hold,
    since procfs makes a new inode for /proc/<pid> whenever its dentry is evicted."""
    eff, prm, _inh = kernel.capget()
    return {
        "no_new_privs": kernel.prctl(kernel.PR_GET_NO_NEW_PRIVS),
        "seccomp": kernel.prctl(kernel.PR_GET_SECCOMP),
        "cap_eff": eff,
        "cap_prm": prm,
    }


@dataclass(frozen=True)
class Expected:
    """What the policy demands of a confined process."""

    seccomp: bool
    bounding_set_empty: bool
    new_namespaces: tuple[str, ...] = ()
    shared_namespaces: tuple[str, ...] = ()
    host_namespaces: Mapping[str, int] = field(default_factory=dict)
    # Every uid and gid (real, effective, saved, fs) must read back as this id, when set.
    ids: int | None = None


def mismatches(expected: Expected, status: Mapping[str, int], ns: Mapping[str, int]) -> list[str]:
    """Every way the read-back state falls short of ``expected`` (empty when it holds)."""
    problems = []
    if status.get("no_new_privs") != 1:
        problems.append(f"NoNewPrivs is {status.get('no_new_privs')}, expected 1")
    if expected.seccomp and status.get("seccomp") != 2:
        problems.append(f"Seccomp is {status.get('seccomp')}, expected 2 (filter)")
    for key in ("cap_eff", "cap_prm", "cap_amb", "cap_inh"):
        if status.get(key, -1) != 0:
            problems.append(f"{key} is {status.get(key, -1):#x}, expected 0")
    if expected.bounding_set_empty and status.get("cap_bnd", -1) != 0:
        problems.append(f"cap_bnd is {status.get('cap_bnd', -1):#x}, expected 0")
    if expected.ids is not None:
        for key in (*_ID_KEYS["Uid"], *_ID_KEYS["Gid"]):
            if status.get(key) != expected.ids:
                problems.append(f"{key} is {status.get(key)}, expected {expected.ids}")
    for name in expected.new_namespaces:
        host = expected.host_namespaces.get(name)
        if host is not None and ns.get(name) in (None, host):
            problems.append(f"{name} namespace is the host's, expected a new one")
    for name in expected.shared_namespaces:
        host = expected.host_namespaces.get(name)
        if host is not None and ns.get(name) != host:
            problems.append(f"{name} namespace differs from the host's, expected shared")
    return problems

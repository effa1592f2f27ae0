"""Named sandbox policies: what a job may see, write and reach, checked before anything forks.

``run`` (CLI default): no network, read-only system view plus ``ro``, writable ``rw`` and a
private /tmp. ``clone``: network only towards its ``egress`` (host, port) pairs, writes only into
the job directory; in the full tier an empty network namespace whose one way out is the
host-side egress proxy (egress.py), elsewhere Landlock TCP connect rules on those ports (which
cannot name an address). ``analyze``: no network, read-only workspace, writable scratch only.
``gateway``: the host network (so it can listen and reach upstreams), TCP bind on its port and
connect only to the upstream ports, read-only system view, read-write state directory.

Invariant: a ``Policy`` returned by a factory here has absolute, normalised, existing paths, no
path both read-only and writable, no writable system directory, and ports in range; every
refusal is a ``SandboxPolicyInvalid`` that names the offending option and the fix.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from auto_review.sandbox.egress import check_pairs, parse_egress
from auto_review.sandbox.errors import SandboxPolicyInvalid
from auto_review.sandbox.limits import Limits
from auto_review.sandbox.seccomp import NETWORK_FAMILIES, NO_NETWORK_FAMILIES

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TMP_SIZE",
    "POLICY_NAMES",
    "SYSTEM_READ_ONLY",
    "Policy",
    "analyze_policy",
    "build_policy",
    "clamp_limits",
    "clone_policy",
    "frozen_env",
    "gateway_policy",
    "interpreter_paths",
    "parse_egress",
    "run_policy",
    "trusted_paths",
]

_MIB = 1024 * 1024
POLICY_NAMES: Final = ("run", "clone", "analyze", "gateway")

# The read-only system view: programs, libraries, and the few /etc files they need. Not /etc
# as a whole (closes: /etc/shadow, host service configs and keys leaking into a job).
SYSTEM_READ_ONLY: Final = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    f"/etc/python{sys.version_info.major}.{sys.version_info.minor}",
)
# Name resolution, only for policies with network.
_NETWORK_READ_ONLY: Final = ("/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf")
# Never visible, never writable: kernel interfaces (the sandbox mounts its own /proc and /dev).
_FORBIDDEN: Final = ("/proc", "/sys", "/dev")
_SYSTEM_DIRS: Final = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/boot")


# Each policy's default limits; also the ceiling the job server clamps requests to.
DEFAULT_LIMITS: Final[dict[str, Limits]] = {
    "run": Limits(),
    "clone": Limits(
        cpu_seconds=600,
        address_space_bytes=4096 * _MIB,
        file_size_bytes=2048 * _MIB,
        open_files=1024,
        processes=128,
        disk_bytes=4096 * _MIB,  # the fetched pack (one file, <= file size) plus git metadata
    ),
    "analyze": Limits(
        cpu_seconds=120,
        address_space_bytes=1024 * _MIB,
        file_size_bytes=64 * _MIB,
        open_files=256,
        processes=64,
        disk_bytes=128 * _MIB,  # only a scratch dir is writable
    ),
    "gateway": Limits(
        cpu_seconds=None,
        address_space_bytes=None,
        file_size_bytes=8192 * _MIB,
        open_files=4096,
        processes=1024,
        # A long-lived service whose state grows by design: no per-run cap (its jobs have one).
        disk_bytes=None,
    ),
}
DEFAULT_TMP_SIZE: Final = 64 * _MIB


def clamp_limits(requested: Limits, ceiling: Limits) -> Limits:
    """``requested`` with every limit at most ``ceiling``'s (None only where it is None)."""

    def clamp(value: int | None, top: int | None) -> int | None:
        if top is None:
            return value
        return top if value is None else min(value, top)

    return Limits(
        cpu_seconds=clamp(requested.cpu_seconds, ceiling.cpu_seconds),
        address_space_bytes=clamp(requested.address_space_bytes, ceiling.address_space_bytes),
        file_size_bytes=clamp(requested.file_size_bytes, ceiling.file_size_bytes),
        open_files=min(requested.open_files, ceiling.open_files),
        processes=clamp(requested.processes, ceiling.processes),
        disk_bytes=clamp(requested.disk_bytes, ceiling.disk_bytes),
    )


@dataclass(frozen=True)
class Policy:
    """A validated sandbox policy (build one with a factory below)."""

    name: str
    ro_paths: tuple[str, ...]
    rw_paths: tuple[str, ...]
    network: bool
    # Landlock TCP rules (ABI >= 4): ``None`` leaves that direction unrestricted.
    tcp_bind_ports: tuple[int, ...] | None
    tcp_connect_ports: tuple[int, ...] | None
    limits: Limits
    tmp_size_bytes: int = DEFAULT_TMP_SIZE
    # (host, port) pairs a job may reach; the full tier enforces them with the egress proxy.
    egress: tuple[tuple[str, int], ...] = ()

    @property
    def socket_families(self) -> frozenset[int]:
        """Address families seccomp lets ``socket``/``socketpair`` create."""
        return NETWORK_FAMILIES if self.network else NO_NETWORK_FAMILIES

    def with_disk_cap(self, disk_bytes: int | None) -> Policy:
        """The same policy with another disk cap (``None`` keeps the policy's own)."""
        if disk_bytes is None:
            return self
        if disk_bytes <= 0:
            raise SandboxPolicyInvalid("the disk cap must be positive")
        return replace(self, limits=replace(self.limits, disk_bytes=disk_bytes))

    def with_extra_read_only(self, paths: Iterable[str]) -> Policy:
        """The same policy with more read-only paths (validated again)."""
        return _validated(replace(self, ro_paths=self.ro_paths + tuple(paths)))


@functools.cache  # the running interpreter does not move; resolving costs ~0.1 ms per spawn
def interpreter_paths() -> tuple[str, ...]:
    """Files the running interpreter needs, to bind read-only at their own paths."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths += [os.path.realpath(sys.executable), sys.executable]
    meipass = getattr(sys, "_MEIPASS", None)  # PyInstaller one-file: the unpacked files
    if isinstance(meipass, str):
        paths.append(meipass)
    paths.append(str(Path(__file__).resolve().parents[2]))  # where auto_review is imported from
    return tuple(dict.fromkeys(os.path.normpath(p) for p in paths))


def frozen_env() -> dict[str, str]:
    """What a re-executed one-file build needs to reuse its unpacked files (bound read-only at
    the same path): PyInstaller's ``_PYI_*`` markers and LD_LIBRARY_PATH's unpacked entry (not
    the operator's entries after it: no host library is the job's to load). {} if not frozen."""
    if not getattr(sys, "frozen", False):
        return {}
    env = {k: v for k, v in os.environ.items() if k.startswith("_PYI_")}
    unpacked = str(getattr(sys, "_MEIPASS", "")).rstrip("/")
    ld = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p.rstrip("/") == unpacked]
    return env | ({"LD_LIBRARY_PATH": ":".join(ld)} if ld and unpacked else {})


@functools.cache
def trusted_paths() -> frozenset[str]:
    """Paths whose symlinks are followed (and recreated inside): the system and interpreter
    views, which no job can write. Every other path must be free of symlinks."""
    return frozenset(SYSTEM_READ_ONLY + _NETWORK_READ_ONLY + interpreter_paths())


def _symlink_in(path: str) -> str | None:
    """The first component of ``path`` that is a symlink (None when there is none)."""
    current = ""
    for part in path.strip("/").split("/"):
        current += "/" + part
        if os.path.islink(current):
            return current
    return None


def _normalise(option: str, path: str) -> str:
    if not os.path.isabs(path):
        raise SandboxPolicyInvalid(f"{option} {path!r}: paths must be absolute")
    return os.path.normpath(path)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _validated(policy: Policy) -> Policy:
    ro = tuple(dict.fromkeys(_normalise("--ro", p) for p in policy.ro_paths))
    rw = tuple(dict.fromkeys(_normalise("--rw", p) for p in policy.rw_paths))
    for option, paths in (("--ro", ro), ("--rw", rw)):
        for path in paths:
            for banned in _FORBIDDEN:
                if _within(path, banned):
                    raise SandboxPolicyInvalid(
                        f"{option} {path}: {banned} is never bound; the sandbox mounts its own"
                    )
    for path in rw:
        if path == "/":
            raise SandboxPolicyInvalid("--rw /: the host root can never be writable")
        for system in _SYSTEM_DIRS:
            if _within(path, system) or _within(system, path):
                raise SandboxPolicyInvalid(
                    f"--rw {path}: would make the system directory {system} writable; "
                    "pass a dedicated job or state directory instead"
                )
        if not os.path.exists(path):
            raise SandboxPolicyInvalid(f"--rw {path}: does not exist; create it first")
    trusted = trusted_paths()
    for option, paths in (("--ro", ro), ("--rw", rw)):
        for path in paths:
            link = None if path in trusted else _symlink_in(path)
            if link is not None:
                # closes: a job planting <job>/repo -> /host/dir for the next job's bind
                # (runc CVE-2021-30465 class); the bind itself is also made without following.
                raise SandboxPolicyInvalid(
                    f"{option} {path}: {link} is a symlink; job paths may not contain symlinks "
                    "(pass the real path)"
                )
    both = sorted(set(ro) & set(rw))
    if both:
        raise SandboxPolicyInvalid(f"{both[0]} is given as both --ro and --rw; choose one")
    if "/" in ro:
        raise SandboxPolicyInvalid("--ro /: the whole host is never visible; list what is needed")
    for ports in (policy.tcp_bind_ports, policy.tcp_connect_ports):
        for port in ports or ():
            if not 0 < port < 65536:
                raise SandboxPolicyInvalid(f"TCP port {port} is out of range 1-65535")
    if not policy.network and (policy.tcp_bind_ports or policy.tcp_connect_ports):
        raise SandboxPolicyInvalid(
            f"policy {policy.name}: TCP ports were given but the policy has no network"
        )
    if policy.tmp_size_bytes <= 0:
        raise SandboxPolicyInvalid("the private /tmp size must be positive")
    if policy.limits.disk_bytes is not None and policy.limits.disk_bytes <= 0:
        raise SandboxPolicyInvalid("the disk cap must be positive")
    egress = _validated_egress(policy)
    return replace(policy, ro_paths=ro, rw_paths=rw, egress=egress)


def _validated_egress(policy: Policy) -> tuple[tuple[str, int], ...]:
    pairs = check_pairs(policy.egress)
    if pairs and not policy.network:
        raise SandboxPolicyInvalid(f"policy {policy.name}: egress was given but it has no network")
    if pairs and set(policy.tcp_connect_ports or ()) != {p for _, p in pairs}:
        raise SandboxPolicyInvalid(
            f"policy {policy.name}: the TCP connect ports must be exactly the egress ports"
        )
    return pairs


def _system(network: bool, ro: Iterable[str]) -> tuple[str, ...]:
    base = SYSTEM_READ_ONLY + (_NETWORK_READ_ONLY if network else ())
    return base + tuple(ro)


def run_policy(
    *,
    ro: Iterable[str] = (),
    rw: Iterable[str] = (),
    network: bool = False,
    limits: Limits | None = None,
) -> Policy:
    """The CLI default: read-only system view plus ``ro``, writable ``rw``, network optional."""
    return _validated(
        Policy(
            name="run",
            ro_paths=_system(network, ro),
            rw_paths=tuple(rw),
            network=network,
            # With network, ``run`` restricts no port; without, every TCP port is denied.
            tcp_bind_ports=None if network else (),
            tcp_connect_ports=None if network else (),
            limits=limits or DEFAULT_LIMITS["run"],
        )
    )


def clone_policy(
    job_dir: str,
    *,
    egress: Iterable[tuple[str, int]],
    ro: Iterable[str] = (),
    limits: Limits | None = None,
) -> Policy:
    """``git clone`` into ``job_dir``: network only towards the ``egress`` (host, port) pairs
    (the forge's), through the egress proxy in the full tier."""
    pairs = tuple((str(host), int(port)) for host, port in egress)
    if not pairs:
        raise SandboxPolicyInvalid(
            "policy clone: give the forge's host and port to reach (--egress HOST:PORT)"
        )
    return _validated(
        Policy(
            name="clone",
            ro_paths=_system(True, ro),
            rw_paths=(job_dir,),
            network=True,
            tcp_bind_ports=(),  # a clone never listens
            tcp_connect_ports=tuple(dict.fromkeys(port for _, port in pairs)),
            limits=limits or DEFAULT_LIMITS["clone"],
            egress=pairs,
        )
    )


def analyze_policy(
    workspace: str,
    *,
    scratch: str | None = None,
    ro: Iterable[str] = (),
    limits: Limits | None = None,
) -> Policy:
    """Parsers over a checked-out workspace: no network, workspace read-only, scratch writable."""
    return _validated(
        Policy(
            name="analyze",
            ro_paths=_system(False, (workspace, *ro)),
            rw_paths=(scratch,) if scratch else (),
            network=False,
            tcp_bind_ports=(),
            tcp_connect_ports=(),
            limits=limits or DEFAULT_LIMITS["analyze"],
        )
    )


def gateway_policy(
    state_dir: str,
    *,
    listen_port: int,
    upstream_ports: Iterable[int],
    ro: Iterable[str] = (),
    limits: Limits | None = None,
) -> Policy:
    """The gateway service: host network, bind ``listen_port``, connect to ``upstream_ports``."""
    return _validated(
        Policy(
            name="gateway",
            ro_paths=_system(True, ro),
            rw_paths=(state_dir,),
            network=True,
            tcp_bind_ports=(listen_port,),
            tcp_connect_ports=tuple(upstream_ports),
            limits=limits or DEFAULT_LIMITS["gateway"],
        )
    )


def build_policy(
    name: str,
    *,
    ro: Iterable[str] = (),
    rw: Iterable[str] = (),
    network: bool = False,
    connect_ports: Iterable[int] = (),
    listen_port: int | None = None,
    egress: Iterable[tuple[str, int]] = (),
) -> Policy:
    """A named policy from CLI-shaped options; refuses combinations the policy cannot honour."""
    ro, rw, ports, pairs = tuple(ro), tuple(rw), tuple(connect_ports), tuple(egress)
    if pairs and name != "clone":
        raise SandboxPolicyInvalid(f"policy {name} takes no --egress; only clone does")
    if name == "run":
        if ports or listen_port is not None:
            raise SandboxPolicyInvalid("policy run takes no --port/--listen; use clone or gateway")
        return run_policy(ro=ro, rw=rw, network=network)
    if name == "analyze":
        if network or ports or listen_port is not None:
            raise SandboxPolicyInvalid("policy analyze has no network; drop --net/--port/--listen")
        if not ro or len(rw) > 1:
            raise SandboxPolicyInvalid(
                "policy analyze needs the workspace as --ro and at most one --rw scratch dir"
            )
        return analyze_policy(ro[0], scratch=rw[0] if rw else None, ro=ro[1:])
    if name == "clone":
        if len(rw) != 1 or listen_port is not None:
            raise SandboxPolicyInvalid(
                "policy clone needs exactly one --rw job dir and no --listen"
            )
        if ports:
            raise SandboxPolicyInvalid(
                "policy clone takes --egress HOST:PORT (the forge), not --port: a port alone "
                "would let the job reach any address on it"
            )
        return clone_policy(rw[0], egress=pairs, ro=ro)
    if name == "gateway":
        if len(rw) != 1 or listen_port is None:
            raise SandboxPolicyInvalid("policy gateway needs one --rw state dir and --listen PORT")
        return gateway_policy(rw[0], listen_port=listen_port, upstream_ports=ports, ro=ro)
    raise SandboxPolicyInvalid(f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")

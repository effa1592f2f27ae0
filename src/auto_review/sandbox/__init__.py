"""The built-in sandbox: container-grade isolation for jobs and the gateway, no runtime needed.

Public API (everything else in this package is private or a step module):

    probe_host() -> HostSupport;  require_tier(tier, support=None) -> HostSupport
    Tier.FULL | Tier.RESTRICTED | Tier.NONE
    run_policy(*, ro=(), rw=(), network=False, limits=None) -> Policy
    clone_policy(job_dir, *, egress=((host, port),), ro=(), limits=None) -> Policy
        (full tier: an empty network namespace whose one way out is a host-side proxy allowing
        exactly the egress pairs, run by whoever spawns the job; see egress.py)
    analyze_policy(workspace, *, scratch=None, ro=(), limits=None) -> Policy
    gateway_policy(state_dir, *, listen_port, upstream_ports, ro=(), limits=None) -> Policy
    Limits(cpu_seconds, address_space_bytes, file_size_bytes, open_files, processes,
           disk_bytes); policy.with_disk_cap(bytes) -> Policy
        (disk_bytes: what the job may add to its writable places; past it the supervisor
        kills the tree: SandboxLimitExceeded(limit="disk"), see diskcap.py)
    interpreter_paths() -> tuple[str, ...]; frozen_env() -> dict[str, str]
        (``ro`` and ``rw`` job paths may not contain symlinks: refused with SandboxPolicyInvalid;
        only the system view and interpreter_paths() follow links)
    build_policy(name, *, ro=(), rw=(), network=False, connect_ports=(), listen_port=None,
                 egress=()); parse_egress("host:port") -> (host, port)
    run_command(argv, policy, *, stdin=b"", env=None, cwd=None, timeout, memory_bytes=None,
                max_output_bytes=16 MiB, isolation=Tier.FULL) -> CompletedRun
    run_attached(argv, policy, *, stdin_fd=0, stdout_fd=1, stderr_fd=2, env=None, cwd=None,
                 timeout, memory_bytes=None, isolation=Tier.FULL, pass_fds=None) -> CompletedRun
    run_callable("pkg.mod:func", payload, policy, *, timeout, memory_bytes=None,
                 max_output_bytes=16 MiB, pythonpath=(), isolation=Tier.FULL) -> bytes
    CompletedRun(returncode, stdout, stderr, posture, egress): ``egress`` is an
        EgressReport(tunnels, refusals) for a job behind the egress proxy (full tier, a policy
        with egress pairs), else None; each EgressRefusal(status, reason, destination) has the
        proxy's fixed reason and at most a bounded host:port. A SandboxError raised for such a
        job carries the same report in ``.egress``.
    host_support(refresh=False) -> HostSupport (probed once per process)
    remove_tree(path) -> bool: remove a dir a job wrote (any depth, modes it took away, no link
        followed; _scratch.py), once nothing that could write there runs; True when it is gone
    Posture / Control (posture.to_dict() is the JSON form); read_back() inside a sandbox
    Started by root, a full-tier job runs as host uid/gid 65534 (writable binds id-mapped);
    a restricted-tier job too, with no mapping: its paths must be usable by uid 65534, or it
    is refused with SandboxPolicyInvalid (docs/adr/0010). restricted_job_id() -> int | None:
    that uid when it applies here (this process is root and 65534 is mapped), else None.
    Inside a gateway started with launch(job_server=True), run_command/run_callable are
    served by the secret-free job server within the gateway's grant; run_attached refuses.
    launch(argv, policy, *, secrets, env, isolation=Tier.FULL, cwd=None, stdio=(0, 1, 2),
           job_server=False, job_egress=(), job_deadline=MAX_JOB_DEADLINE_SECS)
        -> LaunchResult(returncode, cause, posture): the gateway boundary (launcher.py);
        the job server cuts each job's deadline to job_deadline (at most an hour)
    is_inner(environ) -> bool; read_handoff(fd=HANDOFF_FD) -> InnerHandoff(secrets, posture):
        the inner side (call once at startup, before threads)
    WORKER_ARGV_MARKER, worker_main(argv) -> int: a frozen build's entry point must hand
        ``argv[2:]`` to worker_main when ``argv[1] == WORKER_ARGV_MARKER``, before it imports
        anything else (packaging/entry.py does)

Errors: ``SandboxError`` and subclasses (see ``auto_review.sandbox.errors`` for the tree and
exit codes). This package imports nothing else of auto-review.

Exports other than the errors and the worker's entry are resolved on first use (PEP 562): a
job's fresh interpreter imports ``auto_review.sandbox._worker`` and must not pay for the
launcher, the spawn path and the probe (about 60 ms) each time it starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from auto_review.sandbox._worker import WORKER_ARGV_MARKER
from auto_review.sandbox._worker import main as worker_main
from auto_review.sandbox.errors import (
    KernelFeatureMissing,
    SandboxError,
    SandboxJobFailed,
    SandboxLimitExceeded,
    SandboxPolicyInvalid,
    SandboxPolicyViolation,
    SandboxSetupError,
    SandboxSyscallError,
    SandboxTimeout,
)

if TYPE_CHECKING:
    from auto_review.sandbox._proxy import EgressRefusal, EgressReport
    from auto_review.sandbox._scratch import remove_tree
    from auto_review.sandbox.identity import restricted_job_id
    from auto_review.sandbox.launcher import (
        HANDOFF_FD,
        INNER_ENV_VAR,
        MAX_JOB_DEADLINE_SECS,
        InnerHandoff,
        LaunchResult,
        is_inner,
        launch,
        read_handoff,
    )
    from auto_review.sandbox.limits import Limits
    from auto_review.sandbox.policy import (
        POLICY_NAMES,
        Policy,
        analyze_policy,
        build_policy,
        clone_policy,
        frozen_env,
        gateway_policy,
        parse_egress,
        run_policy,
    )
    from auto_review.sandbox.posture import Control, Posture, read_back
    from auto_review.sandbox.probe import HostSupport, Tier, probe_host, require_tier
    from auto_review.sandbox.spawn import (
        CompletedRun,
        host_support,
        interpreter_paths,
        run_attached,
        run_callable,
        run_command,
    )

_EXPORTS = {
    "CompletedRun": "auto_review.sandbox.spawn",
    "Control": "auto_review.sandbox.posture",
    "EgressRefusal": "auto_review.sandbox._proxy",
    "EgressReport": "auto_review.sandbox._proxy",
    "HANDOFF_FD": "auto_review.sandbox.launcher",
    "HostSupport": "auto_review.sandbox.probe",
    "INNER_ENV_VAR": "auto_review.sandbox.launcher",
    "InnerHandoff": "auto_review.sandbox.launcher",
    "LaunchResult": "auto_review.sandbox.launcher",
    "MAX_JOB_DEADLINE_SECS": "auto_review.sandbox.launcher",
    "Limits": "auto_review.sandbox.limits",
    "POLICY_NAMES": "auto_review.sandbox.policy",
    "Policy": "auto_review.sandbox.policy",
    "Posture": "auto_review.sandbox.posture",
    "Tier": "auto_review.sandbox.probe",
    "analyze_policy": "auto_review.sandbox.policy",
    "build_policy": "auto_review.sandbox.policy",
    "clone_policy": "auto_review.sandbox.policy",
    "frozen_env": "auto_review.sandbox.policy",
    "gateway_policy": "auto_review.sandbox.policy",
    "host_support": "auto_review.sandbox.spawn",
    "interpreter_paths": "auto_review.sandbox.spawn",
    "is_inner": "auto_review.sandbox.launcher",
    "launch": "auto_review.sandbox.launcher",
    "parse_egress": "auto_review.sandbox.policy",
    "probe_host": "auto_review.sandbox.probe",
    "read_back": "auto_review.sandbox.posture",
    "read_handoff": "auto_review.sandbox.launcher",
    "remove_tree": "auto_review.sandbox._scratch",
    "require_tier": "auto_review.sandbox.probe",
    "restricted_job_id": "auto_review.sandbox.identity",
    "run_attached": "auto_review.sandbox.spawn",
    "run_callable": "auto_review.sandbox.spawn",
    "run_command": "auto_review.sandbox.spawn",
    "run_policy": "auto_review.sandbox.policy",
}

__all__ = [
    "HANDOFF_FD",
    "INNER_ENV_VAR",
    "MAX_JOB_DEADLINE_SECS",
    "POLICY_NAMES",
    "WORKER_ARGV_MARKER",
    "CompletedRun",
    "Control",
    "EgressRefusal",
    "EgressReport",
    "HostSupport",
    "InnerHandoff",
    "KernelFeatureMissing",
    "LaunchResult",
    "Limits",
    "Policy",
    "Posture",
    "SandboxError",
    "SandboxJobFailed",
    "SandboxLimitExceeded",
    "SandboxPolicyInvalid",
    "SandboxPolicyViolation",
    "SandboxSetupError",
    "SandboxSyscallError",
    "SandboxTimeout",
    "Tier",
    "analyze_policy",
    "build_policy",
    "clone_policy",
    "frozen_env",
    "gateway_policy",
    "host_support",
    "interpreter_paths",
    "is_inner",
    "launch",
    "parse_egress",
    "probe_host",
    "read_back",
    "read_handoff",
    "remove_tree",
    "require_tier",
    "restricted_job_id",
    "run_attached",
    "run_callable",
    "run_command",
    "run_policy",
    "worker_main",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

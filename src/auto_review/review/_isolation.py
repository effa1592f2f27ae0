"""The review pipeline's two sandbox boundaries, each ONE call site.

- ``run_git``: every git process, under the sandbox's ``clone`` policy (network only towards the
  forge's host and port: in the full tier through the sandbox's egress proxy, elsewhere a
  Landlock port rule; writes only beneath the job directory, rlimits including the file size
  cap, a disk cap of twice it, the whole tree killed at the deadline or the cap).
- ``run_analysis``: every parse or search of repository files, under the ``analyze`` policy (no
  network, workspace read-only, CPU/memory/time limits) via ``sandbox.run_callable`` into
  ``_analysis.entry``. Tasks and results cross as JSON, never pickle, so a subverted child
  cannot run code in the parent.

The tier (full / restricted / none) is the operator's ``AR_ISOLATION``; the sandbox refuses a
tier the host cannot provide, which surfaces here as ``IsolationError``. Only this module sees
sandbox exceptions. What the full tier's egress proxy refused a git command (``Refusal``: status,
fixed reason, bounded ``host:port``) comes back on its ``CommandResult`` or ``IsolationError``,
however the command ended.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import auto_review
from auto_review import sandbox
from auto_review.errors import ReviewError
from auto_review.settings import MAX_ANALYSIS_SECS, Isolation

__all__ = [
    "AnalysisFailed",
    "CommandResult",
    "IsolationError",
    "Refusal",
    "run_analysis",
    "run_git",
]

Refusal = sandbox.EgressRefusal

_MAX_CAPTURE = 4 * 1024 * 1024  # stdout/stderr kept from one git command
_ANALYSIS_MEMORY = 1024 * 1024 * 1024
_ANALYSIS_OUTPUT = 16 * 1024 * 1024
# closes: a repository making the analysis child answer 16 MiB of tiny values, which cost ~400
# MiB to parse per job. At the bound the costliest shape, a million one-key objects (2 M
# counted), costs ~190 MiB and 2 M short strings ~120 MiB (measured with tracemalloc on
# CPython 3.11); the bound is above any honest answer (200 files' symbols).
_ANALYSIS_VALUES = 2_000_000
_GIT_MEMORY = 4096 * 1024 * 1024
_GIT_DISK_MIN = 256 * 1024 * 1024
_SOURCE_ROOT = str(Path(auto_review.__file__).resolve().parent.parent)


class IsolationError(ReviewError):
    """The sandbox could not run a step (unsupported tier, setup failure)."""

    def __init__(self, message: str, *, egress_refusals: tuple[Refusal, ...] = ()) -> None:
        super().__init__(message)
        self.egress_refusals = egress_refusals


class AnalysisFailed(ReviewError):
    """An analysis task crashed, timed out or returned something unreadable."""


@dataclass(frozen=True)
class CommandResult:
    """One git step. ``stderr`` is git's (untrusted: a subverted git writes what it likes);
    ``stopped_by`` is the sandbox's own message when one of its limits ended the step."""

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    egress_refusals: tuple[Refusal, ...] = ()
    stopped_by: str = ""


def _tier(isolation: Isolation) -> sandbox.Tier:
    return sandbox.Tier(isolation.value)


def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    job_dir: Path,
    env: Mapping[str, str],
    timeout: float,
    max_file_bytes: int,
    egress: Sequence[tuple[str, int]] = (),
    isolation: Isolation = Isolation.FULL,
) -> CommandResult:
    """Run ``git ARGS`` with exactly ``env``, confined to ``job_dir``; with ``egress`` (the
    forge's (host, port)) it may reach that and nothing else."""
    limits = sandbox.Limits(
        cpu_seconds=int(timeout) + 5,
        address_space_bytes=_GIT_MEMORY,
        file_size_bytes=max_file_bytes,
        open_files=1024,
        processes=128,
        # What one git step may add to the job dir: the fetched pack is one file (at most
        # max_file_bytes, i.e. AR_CLONE_MAX_BYTES), plus its index and git's metadata; the
        # checkout is bounded by the tree-size check. Enforced by the sandbox (F12); at least
        # _GIT_DISK_MIN, since other writers on the same filesystem count too.
        disk_bytes=max(2 * max_file_bytes, _GIT_DISK_MIN),
    )
    try:
        if egress:
            policy = sandbox.clone_policy(str(job_dir), egress=egress, limits=limits)
        else:  # local-only git (ls-tree, checkout): no network at all
            policy = sandbox.run_policy(rw=(str(job_dir),), limits=limits)
        done = sandbox.run_command(
            ["git", *args],
            policy,
            env=dict(env),
            cwd=str(cwd),
            timeout=timeout,
            max_output_bytes=_MAX_CAPTURE,
            isolation=_tier(isolation),
        )
    except sandbox.SandboxTimeout as exc:
        return CommandResult(-9, b"", b"", timed_out=True, egress_refusals=_refusals(exc.egress))
    except sandbox.SandboxLimitExceeded as exc:
        return CommandResult(
            -25, b"", b"", egress_refusals=_refusals(exc.egress), stopped_by=exc.message
        )
    except sandbox.SandboxError as exc:
        raise IsolationError(
            f"the clone sandbox failed: {exc.message}", egress_refusals=_refusals(exc.egress)
        ) from exc
    return CommandResult(
        done.returncode, done.stdout, done.stderr, egress_refusals=_refusals(done.egress)
    )


def _refusals(report: sandbox.EgressReport | None) -> tuple[Refusal, ...]:
    return () if report is None else report.refusals


def run_analysis(
    task: str,
    payload: Mapping[str, Any],
    *,
    timeout: float,
    memory_bytes: int = _ANALYSIS_MEMORY,
    isolation: Isolation = Isolation.FULL,
) -> dict[str, Any]:
    """Run the named analysis task on ``payload`` (whose ``root`` is the only readable tree)."""
    # With the clone's, it makes the job server's ceiling (Settings.job_deadline_secs): a
    # longer deadline would be cut there.
    if not 0 < timeout <= MAX_ANALYSIS_SECS:
        raise ValueError(f"an analysis timeout is above 0 and at most {MAX_ANALYSIS_SECS:.0f} s")
    root = str(payload["root"])
    request = json.dumps({"task": task, "payload": dict(payload)}).encode()
    try:
        out = sandbox.run_callable(
            "auto_review.review._analysis:entry",
            request,
            sandbox.analyze_policy(root),
            timeout=timeout,
            memory_bytes=memory_bytes,
            max_output_bytes=_ANALYSIS_OUTPUT,
            pythonpath=(_SOURCE_ROOT,),
            isolation=_tier(isolation),
        )
    except sandbox.SandboxTimeout:
        raise AnalysisFailed(f"analysis task {task} timed out after {timeout:.0f}s") from None
    except sandbox.SandboxError as exc:
        lines = exc.message.strip().splitlines()
        raise AnalysisFailed(
            f"analysis task {task} failed: {lines[-1][:200] if lines else ''}"
        ) from exc
    # Every value but the first follows a comma or opens a container (commas inside strings
    # only make the bound stricter), so this counts without building anything.
    if out.count(b",") + out.count(b"[") + out.count(b"{") > _ANALYSIS_VALUES:
        raise AnalysisFailed(f"analysis task {task} returned too many values")
    try:
        answer = json.loads(out)
    # A child subverted by the repository can nest its answer deeper than the parser goes.
    except (ValueError, RecursionError) as exc:
        raise AnalysisFailed(f"analysis task {task} returned unreadable output") from exc
    if not isinstance(answer, dict):
        raise AnalysisFailed(f"analysis task {task} returned a {type(answer).__name__}")
    return answer

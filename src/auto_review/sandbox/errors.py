"""The sandbox's own error family (``sandbox/`` imports nothing else of auto-review).

Each class carries the process exit code ``auto-review sandbox run`` uses for it, so the CLI maps
errors to exit codes in one place. Programmer mistakes (bad argument types) stay built-ins. An
error raised by a job that ran behind the egress proxy carries what the proxy saw in ``egress``
(tunnels and refusals; None otherwise), since a refused connection often explains the failure.

    SandboxError (exit 120)               the sandbox could not do what was asked
     +-- SandboxSetupError (120)          a setup step failed (``step``, ``path``, ``errno``)
     |    +-- SandboxSyscallError (120)   a kernel call failed (``name``, ``errno``)
     +-- KernelFeatureMissing (124)       the requested tier needs a feature this host lacks
     |                                    (``feature``, ``fix``)
     +-- SandboxPolicyInvalid (125)       a policy or option combination is refused up front
     +-- SandboxTimeout (121)             the wall-clock deadline passed; the tree was killed
     +-- SandboxLimitExceeded (122)       a resource limit was hit (``limit``)
     +-- SandboxPolicyViolation (123)     the job broke the policy (e.g. killed by SIGSYS) or
     |                                    the posture read back disagrees with the policy
     +-- SandboxJobFailed (1)             run_callable's target raised or exited non-zero
"""

from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auto_review.sandbox._proxy import EgressReport

__all__ = [
    "KernelFeatureMissing",
    "SandboxError",
    "SandboxJobFailed",
    "SandboxLimitExceeded",
    "SandboxPolicyInvalid",
    "SandboxPolicyViolation",
    "SandboxSetupError",
    "SandboxSyscallError",
    "SandboxTimeout",
]


class SandboxError(Exception):
    """Root of every error the sandbox raises on purpose."""

    exit_code: int = 120

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.egress: EgressReport | None = None


class SandboxSetupError(SandboxError):
    """A setup step failed; ``step`` names it, ``path`` and ``errno`` say where and why."""

    def __init__(
        self, message: str, *, step: str, path: str | None = None, errno: int | None = None
    ) -> None:
        super().__init__(message)
        self.step = step
        self.path = path
        self.errno = errno


class SandboxSyscallError(SandboxSetupError):
    """A kernel call returned an error; ``name`` is the call, ``errno`` its error number."""

    errno: int

    def __init__(self, name: str, errno: int, *, path: str | None = None) -> None:
        where = f" on {path}" if path else ""
        code = _errno.errorcode.get(errno, str(errno))
        super().__init__(
            f"{name}{where} failed: {code} ({os.strerror(errno)})",
            step=name,
            path=path,
            errno=errno,
        )
        self.name = name


class KernelFeatureMissing(SandboxError):
    """The requested isolation tier needs ``feature``; ``fix`` says how to enable it."""

    exit_code = 124

    def __init__(self, feature: str, fix: str, *, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{feature} is unavailable{extra}; fix: {fix}")
        self.feature = feature
        self.fix = fix
        self.detail = detail


class SandboxPolicyInvalid(SandboxError):
    """A policy, or a combination of options, is refused before anything forks."""

    exit_code = 125


class SandboxTimeout(SandboxError):
    """The wall-clock deadline passed; the whole sandbox process tree was killed."""

    exit_code = 121


class SandboxLimitExceeded(SandboxError):
    """A resource limit stopped the job; ``limit`` names it (cpu, file_size, output, disk, ...)."""

    exit_code = 122

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class SandboxPolicyViolation(SandboxError):
    """The job broke the policy (killed by seccomp) or the enforced posture disagrees."""

    exit_code = 123


class SandboxJobFailed(SandboxError):
    """A sandboxed callable failed on its own (not the sandbox); ``stderr`` holds its report."""

    exit_code = 1

    def __init__(self, target: str, returncode: int, stderr: bytes) -> None:
        tail = stderr[-2000:].decode("utf-8", "replace").strip()
        super().__init__(f"{target} failed with exit status {returncode}: {tail}")
        self.target = target
        self.returncode = returncode
        self.stderr = stderr

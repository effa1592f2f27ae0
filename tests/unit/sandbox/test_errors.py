"""The error family: one root, documented exit codes, the tree drawn in the docstring."""

from __future__ import annotations

import errno
import json

from auto_review import sandbox
from auto_review.sandbox import _jobs, errors


def test_every_sandbox_error_has_a_distinct_documented_exit_code() -> None:
    codes = {
        errors.SandboxSetupError: 120,
        errors.SandboxTimeout: 121,
        errors.SandboxLimitExceeded: 122,
        errors.SandboxPolicyViolation: 123,
        errors.KernelFeatureMissing: 124,
        errors.SandboxPolicyInvalid: 125,
    }
    for cls, code in codes.items():
        assert issubclass(cls, errors.SandboxError)
        assert cls.exit_code == code
        assert cls.__name__ in (errors.__doc__ or "")


def test_syscall_error_carries_name_errno_and_a_readable_message() -> None:
    exc = errors.SandboxSyscallError("mount", errno.EPERM, path="/x")
    assert (exc.name, exc.errno, exc.path, exc.step) == ("mount", errno.EPERM, "/x", "mount")
    assert "EPERM" in exc.message
    assert "/x" in exc.message


def test_feature_missing_names_the_feature_and_the_fix() -> None:
    exc = errors.KernelFeatureMissing("seccomp", "enable CONFIG_SECCOMP", detail="absent")
    assert "seccomp" in exc.message
    assert "CONFIG_SECCOMP" in exc.message


def test_package_exports_exactly_its_declared_public_names() -> None:
    for name in sandbox.__all__:
        assert hasattr(sandbox, name), name
    public = {n for n in vars(sandbox) if not n.startswith("_")}
    modules = {n for n, v in vars(sandbox).items() if type(v).__name__ == "module"}
    eager = public - modules - {"annotations", "TYPE_CHECKING", "Any"}  # the PEP 562 machinery
    assert eager | set(sandbox._EXPORTS) == set(sandbox.__all__)
    assert not eager & set(sandbox._EXPORTS)


def test_an_error_keeps_its_egress_report_across_the_job_server_wire() -> None:
    exc = errors.SandboxTimeout("the job passed its wall-clock deadline")
    exc.egress = sandbox.EgressReport(
        1, (sandbox.EgressRefusal(403, "destination not allowed", "evil.example:443"),)
    )
    back = _jobs.error_from_wire(json.loads(json.dumps(_jobs.error_to_wire(exc))))
    assert isinstance(back, errors.SandboxTimeout)
    assert back.egress == exc.egress
    plain = _jobs.error_from_wire(_jobs.error_to_wire(errors.SandboxTimeout("late")))
    assert plain.egress is None

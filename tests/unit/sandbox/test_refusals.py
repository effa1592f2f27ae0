"""What a sandbox refusal says: the thing it refused, the host uid it checked, and only fixes
that work in the tier in use (none sends the operator to the tier they are already in)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import require, require_landlock

from auto_review.sandbox import (
    SandboxPolicyInvalid,
    Tier,
    gateway_policy,
    interpreter_paths,
    run_command,
    run_policy,
)
from auto_review.sandbox._io import Outcome
from auto_review.sandbox.launcher import launch

pytestmark = pytest.mark.sandbox

UNREACHABLE = "(EACCES: a directory above it is not searchable by that uid)"


def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("the job is host uid 65534 only when root starts it")


@pytest.fixture
def behind_root_only_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A directory only root can search, and a file in a directory below it."""
    locked = tmp_path / "locked"
    inner = locked / "inner"
    inner.mkdir(parents=True)
    (inner / "file.txt").write_text("readable")
    locked.chmod(0o700)
    tmp_path.chmod(0o755)
    return locked, inner


def _refusal(policy_paths: list[str], path: Path, tier: Tier) -> str:
    with pytest.raises(SandboxPolicyInvalid) as refused:
        run_command(["cat", str(path)], run_policy(ro=policy_paths), timeout=60, isolation=tier)
    return refused.value.message


def test_unreachable_path_in_roots_full_tier_names_host_nobody_and_not_the_full_tier(
    behind_root_only_dir: tuple[Path, Path],
) -> None:
    """The full tier maps what root runs to host uid 65534 (namespaces.ROOT_JOB_HOST_ID), which
    a listed directory above another listed path may refuse, as in the restricted tier."""
    _root_only()
    require(Tier.FULL)
    require_landlock(1)
    locked, inner = behind_root_only_dir
    message = _refusal([str(locked), str(inner)], inner / "file.txt", Tier.FULL)
    assert message == (
        f"sandbox refused the job at landlock: {inner}: not reachable by host uid 65534, to "
        f"which the full tier maps what root runs {UNREACHABLE}; give uid 65534 access "
        "(setfacl -m u:65534:x on those directories), or run auto-review as an ordinary user "
        "(then mapped to that user)"
    )


def test_unreachable_path_in_roots_restricted_tier_offers_the_full_tier_which_reaches_it(
    behind_root_only_dir: tuple[Path, Path],
) -> None:
    _root_only()
    require(Tier.RESTRICTED)
    _locked, inner = behind_root_only_dir
    message = _refusal([str(inner)], inner / "file.txt", Tier.RESTRICTED)
    assert message == (
        f"sandbox refused the job at landlock: {inner}: not reachable by uid 65534, the host "
        f"identity of what root runs in the restricted tier {UNREACHABLE}; give uid 65534 "
        "access (setfacl -m u:65534:x on those directories), run auto-review as an ordinary "
        "user, or use the full tier"
    )
    # The advice holds: the full tier's view makes the directories above a bind its own.
    require(Tier.FULL)
    done = run_command(["cat", str(inner / "file.txt")], run_policy(ro=[str(inner)]), timeout=60)
    assert (done.returncode, done.stdout) == (0, b"readable")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (None, "sandbox refused the job at job-paths: /srv/x: not usable"),
        (
            "the gateway service",
            "sandbox refused the gateway service at job-paths: /srv/x: not usable",
        ),
    ],
)
def test_policy_refusal_names_what_the_sandbox_ran(subject: str | None, expected: str) -> None:
    outcome = Outcome(
        error={"kind": "policy", "step": "job-paths", "message": "/srv/x: not usable"}
    )
    error = outcome.as_error() if subject is None else outcome.as_error(subject)
    assert isinstance(error, SandboxPolicyInvalid)
    assert error.message == expected


def test_launch_refusal_names_the_gateway_service_not_a_job(tmp_path: Path) -> None:
    """Root's restricted-tier gateway is host uid 65534 too; its refusal is the operator's
    first sight of that, so it must say it was the gateway that could not start."""
    _root_only()
    require(Tier.RESTRICTED)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)  # root's: uid 65534 cannot use it
    policy = gateway_policy(str(state), listen_port=1, upstream_ports=[], ro=[*interpreter_paths()])
    with pytest.raises(SandboxPolicyInvalid) as refused:
        launch(
            [sys.executable, "-c", "pass"],
            policy,
            secrets={},
            env={},
            isolation=Tier.RESTRICTED,
        )
    assert refused.value.message.startswith("sandbox refused the gateway service at ")
    assert "uid 65534, the host identity of what root runs in the restricted tier" in (
        refused.value.message
    )

"""The job server's deadline: refused unless a positive number of seconds, cut to the grant's
ceiling (F59). Over the server's real channel: tests/redteam/test_jobserver.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auto_review.sandbox import MAX_JOB_DEADLINE_SECS, SandboxPolicyInvalid, Tier, gateway_policy
from auto_review.sandbox._jobserver import job_deadline
from auto_review.sandbox.launcher import _start_job_server

_GRANT = {"job_deadline": 300.0}


@pytest.mark.parametrize(
    "timeout",
    [float("nan"), float("inf"), float("-inf"), 0, 0.0, -1, -1e-9, "60", None, True, [60]],
    ids=repr,
)
def test_job_server_refuses_a_deadline_that_is_not_a_positive_number_of_seconds(
    timeout: Any,
) -> None:
    with pytest.raises(SandboxPolicyInvalid, match="job server refuses timeout"):
        job_deadline(timeout, _GRANT)


def test_job_server_keeps_a_deadline_within_the_grant_and_cuts_a_longer_one_to_it() -> None:
    assert job_deadline(60, _GRANT) == 60.0
    assert job_deadline(299.5, _GRANT) == 299.5
    assert job_deadline(300.5, _GRANT) == 300.0
    assert job_deadline(3e6, _GRANT) == 300.0  # past what poll(2) can wait: no longer refused
    assert job_deadline(10**400, _GRANT) == 300.0  # too large for a float


def test_job_server_cuts_a_deadline_to_the_hard_maximum_whatever_the_grant_says() -> None:
    assert job_deadline(1e9, {}) == MAX_JOB_DEADLINE_SECS
    assert job_deadline(1e9, {"job_deadline": 1e9}) == MAX_JOB_DEADLINE_SECS
    assert job_deadline(60, {}) == 60.0


@pytest.mark.parametrize(
    "ceiling", [0, -1, float("nan"), float("inf"), MAX_JOB_DEADLINE_SECS + 1], ids=repr
)
def test_launcher_refuses_a_job_deadline_beyond_the_hard_maximum_before_starting(
    ceiling: float, tmp_path: Path
) -> None:
    policy = gateway_policy(str(tmp_path), listen_port=1, upstream_ports=[9])
    with pytest.raises(SandboxPolicyInvalid, match="job_deadline"):
        _start_job_server(policy, Tier.FULL, [], job_deadline=ceiling)

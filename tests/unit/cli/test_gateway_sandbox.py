"""The sandboxed gateway's state dir: created private, given to the restricted tier's uid only
when this start creates it, and its tmp/ checked by the inner at start (real processes as root
and as uid 65534: tests/e2e/test_gateway_restricted.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from auto_review import sandbox
from auto_review.cli import _gateway_sandbox
from auto_review.errors import StoreError
from auto_review.settings import Settings, load_settings

_REQUIRED = {
    "FORGEJO_BASE_URL": "http://127.0.0.1:9",
    "AR_FORGEJO_TOKEN": "t" * 40,
    "LLM_BASE_URL": "http://127.0.0.1:9/v1",
    "WEBHOOK_SECRET": "w" * 40,
}


def _settings(state: Path, isolation: str) -> Settings:
    env = {**_REQUIRED, "AR_STATE_DIR": str(state), "AR_ISOLATION": isolation}
    return load_settings(env).settings


def test_missing_state_dir_is_created_private(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    assert _gateway_sandbox._prepare_state_dir(_settings(state, "full")) == state
    assert state.stat().st_mode & 0o777 == 0o700
    assert state.stat().st_uid == os.geteuid()


def test_restricted_root_gives_a_state_dir_it_creates_to_the_job_uid_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Our own uid stands in for 65534, so this runs unprivileged too.
    monkeypatch.setattr(sandbox, "restricted_job_id", os.getuid)
    state = tmp_path / "state"
    _gateway_sandbox._prepare_state_dir(_settings(state, "restricted"))
    assert (state.stat().st_uid, state.stat().st_mode & 0o777) == (os.getuid(), 0o700)
    said = " ".join(capsys.readouterr().err.split())
    assert f"created the state directory {state} owned by uid {os.getuid()}" in said


@pytest.mark.parametrize(("isolation", "parents"), [("restricted", 0o755), ("full", 0o700)])
def test_parents_created_for_the_restricted_uid_are_searchable_under_umask_0077(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolation: str, parents: int
) -> None:
    """Under the systemd unit's UMask=0077 the restricted tier's uid could not reach a state dir
    below parents this start made; the full tier's gateway is the caller, so the umask holds."""
    monkeypatch.setattr(sandbox, "restricted_job_id", os.getuid)
    state = tmp_path / "var" / "lib" / "state"
    previous = os.umask(0o077)
    try:
        _gateway_sandbox._prepare_state_dir(_settings(state, isolation))
    finally:
        os.umask(previous)
    modes = [p.stat().st_mode & 0o777 for p in (tmp_path / "var", state.parent, state)]
    assert modes == [parents, parents, 0o700]


def test_existing_state_dir_is_never_reowned_or_rechmoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chowned: list[object] = []
    monkeypatch.setattr(sandbox, "restricted_job_id", lambda: 65534)
    monkeypatch.setattr(os, "chown", lambda *args: chowned.append(args))
    state = tmp_path / "state"
    state.mkdir(mode=0o750)
    _gateway_sandbox._prepare_state_dir(_settings(state, "restricted"))
    assert chowned == []
    assert state.stat().st_mode & 0o777 == 0o750
    assert "created" not in capsys.readouterr().err


def test_full_tier_never_reowns_a_state_dir_it_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "restricted_job_id", lambda: 65534)
    chowned: list[object] = []
    monkeypatch.setattr(os, "chown", lambda *args: chowned.append(args))
    _gateway_sandbox._prepare_state_dir(_settings(tmp_path / "state", "full"))
    assert chowned == []


def test_inner_creates_its_tmp_dir_private(tmp_path: Path) -> None:
    _gateway_sandbox._require_tmp(tmp_path / "tmp", None)
    assert (tmp_path / "tmp").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("owner", "who", "chown"),
    [
        (65534, "uid 65534", "chown -R 65534"),
        (None, "the user that starts the gateway", "chown -R USER"),
    ],
)
def test_inner_refuses_a_tmp_it_cannot_use_naming_the_owner_and_chown_r(
    tmp_path: Path, owner: int | None, who: str, chown: str
) -> None:
    (tmp_path / "tmp").write_text("")  # not a directory: unusable even for root
    with pytest.raises(StoreError) as refused:
        _gateway_sandbox._require_tmp(tmp_path / "tmp", owner)
    message = refused.value.message
    assert message.startswith(f"{tmp_path / 'tmp'}: the gateway cannot write it")
    assert f"must belong to {who}" in message
    assert f"({chown} {tmp_path};" in message


def test_launcher_hands_every_secret_over_on_the_pipe_never_in_the_inner_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "AR_FORGEJO_TOKEN": "t" * 40,
        "WEBHOOK_SECRET": "w" * 40,
        "AR_CI_REVIEW_TOKEN": "c" * 40,
        "AR_OPERATOR_TOKEN": "o" * 40,
        "LLM_API_KEY": "k" * 40,
    }
    environ = {**_REQUIRED, **secrets, "AR_STATE_DIR": str(tmp_path / "state")}
    launched: dict[str, Any] = {}

    def launch(argv: list[str], policy: object, **kwargs: Any) -> sandbox.LaunchResult:
        launched.update(kwargs)
        posture = sandbox.Posture("full", "full", "gateway", ())
        return sandbox.LaunchResult(0, "exited with status 0", posture)

    monkeypatch.setattr(sandbox, "launch", launch)
    assert _gateway_sandbox.launch_gateway(load_settings(environ).settings, environ) == 0
    assert launched["secrets"] == secrets
    assert not set(secrets) & set(launched["env"])
    assert launched["env"]["FORGEJO_BASE_URL"] == _REQUIRED["FORGEJO_BASE_URL"]  # settings do go


@pytest.mark.parametrize(
    ("clone_secs", "ceiling"), [("10", 120.0), ("300", 300.0), ("3600", 3600.0)]
)
def test_gateway_grants_its_job_server_the_longest_deadline_its_own_jobs_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clone_secs: str, ceiling: float
) -> None:
    """The job server cuts each job's deadline to this (F59): a clone's whole deadline, or an
    analysis task's 120 s when that is longer; the largest clone timeout the settings allow
    still fits the sandbox's hard maximum."""
    granted: list[float] = []

    def launch(*_args: object, job_deadline: float, **_kw: object) -> sandbox.LaunchResult:
        granted.append(job_deadline)
        posture = sandbox.Posture("full", "full", "gateway", ())
        return sandbox.LaunchResult(0, "exited with status 0", posture)

    monkeypatch.setattr(sandbox, "launch", launch)
    env = {
        **_REQUIRED,
        "AR_STATE_DIR": str(tmp_path / "state"),
        "AR_CLONE_TIMEOUT_SECS": clone_secs,
    }
    assert _gateway_sandbox.launch_gateway(load_settings(env).settings, env) == 0
    assert granted == [ceiling]
    assert ceiling <= sandbox.MAX_JOB_DEADLINE_SECS

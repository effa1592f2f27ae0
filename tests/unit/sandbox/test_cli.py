"""``auto-review sandbox check|run``: in-process with CliRunner, and as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import ask_proxy, in_child, require
from typer.testing import CliRunner

from auto_review.cli.main import app
from auto_review.sandbox import (
    SandboxPolicyInvalid,
    SandboxTimeout,
    Tier,
    kernel,
    namespaces,
    posture,
)

pytestmark = pytest.mark.sandbox
CLI = [sys.executable, "-m", "auto_review"]


def test_check_json_reports_the_tier_and_every_control_in_process() -> None:
    require(Tier.FULL)
    result = CliRunner().invoke(app, ["sandbox", "check", "--json", "--isolation", "full"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["supported"] is True
    assert data["host"]["best_tier"] == "full"
    states = {c["name"]: c["state"] for c in data["posture"]["controls"]}
    assert states["seccomp"] == "on"
    assert states["pid_namespace"] == "on"
    assert states["cgroup_limits"] in ("on", "unavailable")


def test_check_json_agrees_with_what_a_job_reads_from_proc() -> None:
    require(Tier.FULL)
    check = subprocess.run(
        [*CLI, "sandbox", "check", "--json", "--isolation", "full"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    job = subprocess.run(
        [*CLI, "sandbox", "run", "--", "cat", "/proc/self/status"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert job.returncode == 0, job.stderr
    reported = json.loads(check.stdout)["posture"]["read_back"]["status"]
    own = posture.parse_status(job.stdout)
    for key in ("no_new_privs", "seccomp", "cap_eff", "cap_prm", "cap_bnd"):
        assert reported[key] == own[key], key


def test_run_propagates_the_exit_status_and_output_in_process() -> None:
    require(Tier.FULL)
    result = CliRunner().invoke(app, ["sandbox", "run", "--", "sh", "-c", "echo hi; exit 3"])
    assert result.exit_code == 3
    assert result.stdout == "hi\n"


def test_run_raises_the_typed_timeout_in_process() -> None:
    require(Tier.FULL)
    result = CliRunner().invoke(app, ["sandbox", "run", "--timeout", "0.5", "--", "sleep", "30"])
    assert isinstance(result.exception, SandboxTimeout)
    assert result.exception.exit_code == 121


def test_run_refuses_a_bad_combination_before_starting_in_process() -> None:
    result = CliRunner().invoke(
        app, ["sandbox", "run", "--policy", "analyze", "--net", "--", "true"]
    )
    assert isinstance(result.exception, SandboxPolicyInvalid)
    assert result.exception.exit_code == 125


@pytest.mark.parametrize("timeout", ["nan", "inf", "0", "-5"])
def test_run_refuses_a_timeout_that_is_not_a_positive_number_of_seconds(timeout: str) -> None:
    result = CliRunner().invoke(app, ["sandbox", "run", "--timeout", timeout, "--", "true"])
    assert isinstance(result.exception, SandboxPolicyInvalid), result.exception
    assert "--timeout must be a positive number of seconds" in result.exception.message


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--", "sh", "-c", "exit 7"], 7),
        (["--", "sh", "-c", "kill -TERM $$"], 128 + 15),
        (["--timeout", "0.5", "--", "sleep", "30"], 121),
        (["--", "sh", "-c", "kill -SYS $$"], 123),
        (["--policy", "nope", "--", "true"], 125),
        (["--", "no-such-command-here"], 127),
    ],
)
def test_run_exit_codes_as_a_real_subprocess(argv: list[str], code: int) -> None:
    require(Tier.FULL)
    done = subprocess.run(
        [*CLI, "sandbox", "run", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == code, done.stderr


def test_run_passes_stdin_and_stdout_through_as_a_real_subprocess() -> None:
    require(Tier.FULL)
    done = subprocess.run(
        [*CLI, "sandbox", "run", "--", "tr", "a-z", "A-Z"],
        input="shout\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (0, "SHOUT\n")


def test_unavailable_tier_exits_124_for_run_and_1_for_check() -> None:
    require(Tier.FULL)

    def child() -> list[int]:
        namespaces.enter_namespaces(kernel.CLONE_NEWUSER, os.getuid(), os.getgid())
        with open("/proc/sys/user/max_user_namespaces", "w", encoding="ascii") as fh:
            fh.write("0")
        codes = []
        for argv in (
            ["check", "--isolation", "full"],
            ["run", "--isolation", "full", "--", "true"],
        ):
            done = subprocess.run(
                [*CLI, "sandbox", *argv],
                capture_output=True,
                check=False,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            codes.append(done.returncode)
        return codes

    assert in_child(child) == [1, 124]


def _fill_under_disk_cap(cap: str, files: int) -> tuple[subprocess.CompletedProcess[str], int]:
    """``sandbox run --rw DIR --disk CAP`` of sh writing FILES files of 1 MiB each into DIR
    (each far below RLIMIT_FSIZE); returns the run and how many bytes DIR held after it."""
    target = tempfile.mkdtemp(prefix="ar-cli-disk-", dir="/var/tmp")  # not /tmp: hidden inside
    loop = (
        f'i=0; while [ $i -lt {files} ]; do head -c 1048576 /dev/zero > "{target}/f$i" '
        "|| exit 9; i=$((i+1)); done"
    )
    try:
        done = subprocess.run(
            [*CLI, "sandbox", "run", "--rw", target, "--disk", cap, "--", "sh", "-c", loop],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        written = sum(os.stat(os.path.join(target, f)).st_size for f in os.listdir(target))
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return done, written


def test_run_disk_option_kills_a_job_writing_past_it_with_exit_122() -> None:
    require(Tier.FULL)
    done, written = _fill_under_disk_cap("16M", 256)
    assert done.returncode == 122, done.stderr
    assert "disk" in done.stderr, done.stderr
    assert written < 256 * 1024 * 1024


def test_run_disk_option_lets_a_job_below_it_finish_as_a_real_subprocess() -> None:
    require(Tier.FULL)
    done, written = _fill_under_disk_cap("64M", 4)
    assert (done.returncode, written) == (0, 4 * 1024 * 1024), done.stderr


def test_run_refuses_a_disk_size_that_is_not_a_size_in_process() -> None:
    for bad in ("0", "lots", "-5M"):
        result = CliRunner().invoke(app, ["sandbox", "run", "--disk", bad, "--", "true"])
        assert isinstance(result.exception, SandboxPolicyInvalid), bad
        assert "--disk" in result.exception.message


@pytest.fixture
def forge_port() -> Iterator[int]:
    """A loopback listener standing for the forge (the kernel completes the proxy's dial)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as forge:
        forge.bind(("127.0.0.1", 0))
        forge.listen(4)
        yield int(forge.getsockname()[1])


def test_run_prints_each_egress_refusal_on_stderr_and_keeps_the_exit_status_as_a_real_subprocess(
    forge_port: int, tmp_path: Path
) -> None:
    require(Tier.FULL)
    script = ask_proxy("evil.example:443", f"127.0.0.1:{forge_port}", "[::1]:22") + "; exit 5"
    done = subprocess.run(
        [*CLI, "sandbox", "run", "--isolation", "full", "--policy", "clone",
         "--rw", str(tmp_path), "--egress", f"127.0.0.1:{forge_port}", "--", "bash", "-c", script],
        capture_output=True, text=True, check=False, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    # The positive control: the forge's own tunnel was opened and is not reported.
    assert "HTTP/1.1 200 Connection established" in done.stdout
    assert done.stderr.splitlines() == [
        "egress refused: 403 destination not allowed by the sandbox policy (evil.example:443)",
        "egress refused: 403 destination not allowed by the sandbox policy ([::1]:22)",
    ]


def test_run_prints_the_egress_refusals_of_a_job_that_failed_in_the_sandbox_in_process(
    tmp_path: Path,
) -> None:
    require(Tier.FULL)
    script = ask_proxy("evil.example:443") + "; sleep 30"
    result = CliRunner().invoke(
        app,
        ["sandbox", "run", "--isolation", "full", "--policy", "clone", "--rw", str(tmp_path),
         "--egress", "127.0.0.1:9", "--timeout", "2", "--", "bash", "-c", script],
    )  # fmt: skip
    assert isinstance(result.exception, SandboxTimeout)
    assert result.stderr.splitlines() == [
        "egress refused: 403 destination not allowed by the sandbox policy (evil.example:443)"
    ]

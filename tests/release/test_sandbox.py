"""The built executable confines commands itself, as root and as an unprivileged user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.release._binary import host_environment, run_binary

pytestmark = pytest.mark.sandbox

NOBODY = 65534


def _has_sandbox(binary: Path) -> None:
    if "sandbox" not in run_binary(binary, "--help").stdout:
        pytest.skip("this build has no `sandbox` command yet (sandbox CLI not merged)")


def _full_tier(binary: Path, runner: list[str]) -> None:
    checked = subprocess.run(
        [*runner, str(binary), "sandbox", "check", "--json"],
        env=host_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(checked.stdout)
    if report["host"]["best_tier"] != "full":
        pytest.skip(f"this host cannot give the full tier: {report['host']}")


@pytest.fixture
def unprivileged_binary(release_binary: Path) -> Iterator[Path]:
    """A copy of the built file an unprivileged user can execute (the original may sit in /root)."""
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (apt-get install util-linux)")
    directory = Path(tempfile.mkdtemp(prefix="ar-release-", dir="/tmp"))
    try:
        directory.chmod(0o755)
        copy = directory / "auto-review"
        shutil.copy2(release_binary, copy)
        copy.chmod(0o755)
        yield copy
    finally:
        shutil.rmtree(directory)


def _as_nobody() -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def _sandbox_run(
    binary: Path, runner: list[str], *command: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*runner, str(binary), "sandbox", "run", "--timeout", "60", "--", *command],
        env=host_environment(HOME="/nonexistent"),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("user", ["root", "unprivileged"])
def test_release_sandbox_runs_a_command_and_hides_the_host(
    release_binary: Path, user: str, request: pytest.FixtureRequest
) -> None:
    _has_sandbox(release_binary)
    if user == "root":
        if os.geteuid() != 0:
            pytest.skip("the root case needs root")
        binary, runner = release_binary, []
    else:
        binary, runner = request.getfixturevalue("unprivileged_binary"), _as_nobody()
    _full_tier(binary, runner)
    # Positive control: the sandbox runs a host program and passes its output and status back.
    ran = _sandbox_run(binary, runner, "/bin/sh", "-c", "echo confined; exit 3")
    assert (ran.returncode, ran.stdout) == (3, "confined\n"), ran.stderr
    # The host's secrets are not in the sandbox's file system view at all.
    shadow = _sandbox_run(binary, runner, "/bin/cat", "/etc/shadow")
    assert shadow.returncode != 0
    assert "No such file or directory" in shadow.stderr
    # Writes land in the sandbox's private /tmp, never on the host.
    marker = Path("/tmp") / f"ar-release-escape-{user}-{os.getpid()}"
    wrote = _sandbox_run(binary, runner, "/bin/sh", "-c", f"echo x > {marker} && cat {marker}")
    assert (wrote.returncode, wrote.stdout) == (0, "x\n"), wrote.stderr
    assert not marker.exists()
    # no_new_privs holds inside.
    status = _sandbox_run(binary, runner, "/bin/grep", "NoNewPrivs", "/proc/self/status")
    assert status.stdout.split() == ["NoNewPrivs:", "1"], status.stderr

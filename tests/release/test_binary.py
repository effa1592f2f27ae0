"""The built executable runs on its own: version, help, configuration, bundled data, state."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.release._binary import bundled_names, host_environment, run_binary

SECRET = "release-smoke-secret-value"


def test_release_binary_prints_its_version(release_binary: Path) -> None:
    result = run_binary(release_binary, "--version")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"auto-review \d+\.\d+\.\d+\S*\n", result.stdout)


def test_release_binary_needs_no_python_on_the_host(release_binary: Path, tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    result = run_binary(release_binary, "--version", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("auto-review ")


def test_release_binary_help_lists_its_command_groups(release_binary: Path) -> None:
    result = run_binary(release_binary, "--help")
    assert result.returncode == 0, result.stderr
    assert "config" in result.stdout


def test_release_binary_config_check_lists_problems_without_the_secret(
    release_binary: Path,
) -> None:
    env = host_environment(WEBHOOK_SECRET=SECRET, AR_ISOLATON="full")
    result = run_binary(release_binary, "config", "check", env=env)
    assert result.returncode == 1
    for name in ("FORGEJO_BASE_URL", "AR_FORGEJO_TOKEN", "LLM_BASE_URL", "WEBHOOK_SECRET"):
        assert name in result.stderr
    assert "did you mean AR_ISOLATION?" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_release_binary_config_check_passes_a_good_environment(release_binary: Path) -> None:
    env = host_environment(
        FORGEJO_BASE_URL="https://forge.example",
        AR_FORGEJO_TOKEN=SECRET,
        LLM_BASE_URL="http://127.0.0.1:11434/v1",
        WEBHOOK_SECRET=SECRET * 2,
    )
    result = run_binary(release_binary, "config", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_release_binary_carries_migrations_grammars_and_re2(release_binary: Path) -> None:
    names = bundled_names(release_binary)
    migrations = {n for n in names if re.fullmatch(r"auto_review/migrations/\d{4}_\w+\.sql", n)}
    assert "auto_review/migrations/0001_init.sql" in migrations
    assert any(re.fullmatch(r"re2/_re2\..*\.so", n) for n in names)
    grammars = {
        n.split("/")[0] for n in names if re.fullmatch(r"tree_sitter_\w+/_binding.*\.so", n)
    }
    for language in ("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp"):
        assert f"tree_sitter_{language}" in grammars


def test_release_binary_applies_its_bundled_migrations(
    release_binary: Path, tmp_path: Path
) -> None:
    if "history" not in run_binary(release_binary, "--help").stdout:
        pytest.skip("this build has no `history` command that opens the state database")
    state = tmp_path / "state"
    env = host_environment(AR_STATE_DIR=str(state))
    result = run_binary(release_binary, "history", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    bundled = {
        int(Path(n).name[:4])
        for n in bundled_names(release_binary)
        if re.fullmatch(r"auto_review/migrations/\d{4}_\w+\.sql", n)
    }
    databases = list(state.glob("*.sqlite3"))
    assert len(databases) == 1
    with closing(sqlite3.connect(databases[0])) as conn:
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    assert applied == bundled


def test_release_binary_reports_what_the_sandbox_supports(release_binary: Path) -> None:
    if "sandbox" not in run_binary(release_binary, "--help").stdout:
        pytest.skip("this build has no `sandbox` command yet (sandbox CLI not merged)")
    result = run_binary(release_binary, "sandbox", "check", "--json")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["host"]["best_tier"] in {"full", "restricted", "none"}
    assert {"seccomp", "user_namespaces", "landlock_abi"} <= set(report["host"])


def test_release_binary_app_process_ends_when_its_bootloader_is_killed(
    release_binary: Path, tmp_path: Path
) -> None:
    """SIGKILL to the main pid must not leave the unpacked app running (port, database held)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = host_environment(
        AR_STATE_DIR=str(tmp_path),
        AR_GATEWAY_BIND=f"127.0.0.1:{port}",
        AR_POLL_INTERVAL_SECS="0",
        FORGEJO_BASE_URL="http://127.0.0.1:9",
        AR_FORGEJO_TOKEN="token-0123456789",
        LLM_BASE_URL="http://127.0.0.1:9/v1",
        WEBHOOK_SECRET="w" * 40,
    )
    boot = subprocess.Popen(
        [str(release_binary), "gateway", "--bare"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    unpacked: Path | None = None
    try:
        app = _wait_for_child(boot.pid)
        _wait_for_port(port)
        # Positive control: the app process is alive (and serving) while its bootloader is.
        assert Path(f"/proc/{app}").exists()
        unpacked = _unpacked_dir(app)
        boot.kill()
        boot.wait(timeout=10)
        assert _gone(app, within_secs=10), f"app process {app} outlived its bootloader"
    finally:
        if boot.poll() is None:
            boot.kill()
            boot.wait(timeout=10)
    # A killed bootloader cannot remove what it unpacked (docs/RELEASE.md says so); tidy up.
    if unpacked is not None:
        shutil.rmtree(unpacked, ignore_errors=True)


def _unpacked_dir(pid: int) -> Path | None:
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1]
        if "/_MEI" in path and path.endswith("libpython3.11.so.1.0"):
            return Path(path).parent
    return None


def _wait_for_child(pid: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("the bootloader started no app process")


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the gateway never listened")


def _gone(pid: int, *, within_secs: float) -> bool:
    deadline = time.monotonic() + within_secs
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # reaped by init soon; it no longer runs
            return True
        time.sleep(0.05)
    return False

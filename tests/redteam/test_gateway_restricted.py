"""Red team: the gateway in the restricted tier (no namespaces; Landlock, seccomp, rlimits).

There is no filesystem view to look into from the host (the full tier's tests read
/proc/<pid>/root): the restricted gateway sees the host's tree, narrowed by Landlock. So the
attacks run as the inner gateway process itself: ``tests.redteam.gateway_inner_probe`` runs the
shipped ``auto-review gateway`` launch path (settings, secrets on the handoff pipe, the gateway
policy, the job server) with a probe exec'd in the gateway's place. Each attack is first run on
the host by the test, unsandboxed, where it must work, or that target is skipped with the
reason. The live gateway's environment is read from the host through /proc.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.gateway_process import CI_TOKEN, REPO_ROOT, SECRET, GatewayProcess
from tests.e2e.gateway_python import (
    gateway_bin,
    require_restricted_tier,
    searchable_dir,
    state_dir_in,
)
from tests.e2e.proc_tree import inner_gateway
from tests.fakes.forge import FakeForge
from tests.redteam._harness import PROBE_PYTHON, Probes, run_host

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture
def host_dir() -> Iterator[Path]:
    with searchable_dir(".ar-redteam-gwr-") as path:
        yield path


@pytest.fixture
def planted(host_dir: Path, fake_home: Path) -> Path:
    """A secret the gateway's uid may read by file modes, outside every Landlock grant: only
    Landlock can refuse it (EACCES). As root: world-readable under /var/tmp (the gateway is
    uid 65534); otherwise the operator's own key in a fake home (the gateway is that uid)."""
    if os.geteuid() != 0:
        return fake_home / ".ssh" / "id_ed25519"
    directory = host_dir / "operator-files"
    directory.mkdir(mode=0o755)
    secret = directory / "notes.txt"
    secret.write_text(f"AR-PLANTED-{secrets.token_hex(8)}\n")
    secret.chmod(0o644)
    return secret


@pytest.fixture
def state_dir(host_dir: Path) -> Path:
    return state_dir_in(host_dir)


def _run_as_inner_gateway(
    state: Path, forge: FakeForge, probe: Path, attacks: list[str]
) -> list[dict[str, object]]:
    """Run the attacks as the confined gateway; the probes' JSON lines."""
    gateway = GatewayProcess(state, forge_url=forge.url, forge_token=forge.bot_token)
    env = {**gateway.env, "AR_ISOLATION": "restricted", "PYTHONPATH": str(REPO_ROOT)}
    argv = [
        str(gateway_bin() / "python"),
        "-m",
        "tests.redteam.gateway_inner_probe",
        PROBE_PYTHON,
        str(probe),
        *attacks,
    ]
    done = subprocess.run(
        argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_restricted_gateway_host_secret_read_is_blocked_by_landlock(
    probes: Probes, fake_forge: FakeForge, state_dir: Path, planted: Path
) -> None:
    """Attack (post-exploitation of the gateway): read /etc/shadow, list root's home and the
    operator's home, read a secret the gateway's uid could read by file modes, and read the
    launcher's environment, which holds the forge token and webhook secret. Control: Landlock
    grants the restricted gateway only the system and interpreter paths and its state dir
    (EACCES); as root, uid 65534's file modes refuse the first three too, so the planted file
    is the one only Landlock stops. Positive controls: the state dir and /usr are readable.
    Reference: DESIGN.md "Isolation tiers"; docs/adr/0010; §1, §2."""
    require_restricted_tier()
    probe = state_dir / "pyprobe.py"
    shutil.copy(probes.directory / "pyprobe.py", probe)
    probe.chmod(0o644)
    attacks = {
        "read=/etc/shadow": "/etc/shadow",
        "listdir=/root": "/root",
        f"listdir={Path.home()}": "the operator's home",
        f"read={planted}": "a file the gateway's uid may read by its modes",
        "read=/proc/{launcher}/environ": "the launcher's environment (secrets)",
    }
    runnable, skipped = [], []
    for attack, what in attacks.items():
        name, _, arg = attack.partition("=")
        # On the host, this test process stands in for the launcher (both are our own).
        arg = arg.replace("{launcher}", str(os.getpid()))
        host = run_host([PROBE_PYTHON, "-I", "-S", str(probe), name, arg])
        if host.ok:
            runnable.append(attack)
        else:
            skipped.append(f"{what} is out of reach on the host already: {host.result}")
    if not runnable:
        pytest.skip(f"no attack works on the host as uid {os.getuid()}: {skipped}")
    controls = ["read=" + str(probe), "listdir=/usr"]
    lines = _run_as_inner_gateway(state_dir, fake_forge, probe, [*controls, *runnable])
    assert len(lines) == len(controls) + len(runnable), lines
    for line in lines[: len(controls)]:
        assert line["ok"], f"positive control failed in the gateway: {line}"
    for line in lines[len(controls) :]:
        assert not line["ok"], f"the restricted gateway got through: {line}"
        assert line["errno"] == "EACCES", line
    assert f"read={planted}" in runnable, skipped  # the Landlock-only case ran


def test_restricted_gateway_secret_in_environ_is_blocked_by_pipe_handoff(
    fake_forge: FakeForge, state_dir: Path
) -> None:
    """Attack: read the forge token, webhook secret or CI token from the serving restricted
    gateway's environment (a child it spawns, or any process of its uid, would inherit or read
    it). Control: the launcher hands secrets over on a pipe (fd 3); the inner environment holds
    settings only. The host reads /proc/<inner>/environ; the positive control finds the
    listen address there. Reference: DESIGN.md "Nothing secret is written to disk to cross the
    boundary"; the full tier's test_gateway_secret_in_environ_is_blocked_by_pipe_handoff."""
    require_restricted_tier()
    gateway = GatewayProcess(
        state_dir,
        forge_url=fake_forge.url,
        forge_token=fake_forge.bot_token,
        argv=(str(gateway_bin() / "auto-review"), "gateway"),
        env={"AR_ISOLATION": "restricted", "AR_CI_REVIEW_TOKEN": CI_TOKEN},
    ).start()
    try:
        assert gateway.proc is not None
        inner = inner_gateway(gateway.proc.pid)
        launcher_env = Path(f"/proc/{gateway.proc.pid}/environ").read_bytes()
        environ = Path(f"/proc/{inner}/environ").read_bytes()
        assert f"127.0.0.1:{gateway.port}".encode() in environ, "positive control: no settings"
        for value in (fake_forge.bot_token, SECRET, CI_TOKEN):
            assert value.encode() in launcher_env, "positive control: the secret was not given"
            assert value.encode() not in environ, "a secret is in the confined gateway's environ"
        assert gateway.terminate() == 0
    finally:
        gateway.stop()

"""``auto-review gateway`` (non-bare) really runs under the launcher: posture, health, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import require

from auto_review.sandbox import Tier

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def test_gateway_serves_confined_and_reports_the_read_back_posture(tmp_path: Path) -> None:
    require(Tier.FULL)
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "FORGEJO_BASE_URL": "http://127.0.0.1:9",
        "AR_FORGEJO_TOKEN": "token-0123456789abcdef",
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "WEBHOOK_SECRET": "w" * 40,
        "AR_STATE_DIR": str(tmp_path / "state"),
        "AR_GATEWAY_BIND": f"127.0.0.1:{port}",
        "AR_POLL_INTERVAL_SECS": "0",
        "AR_ISOLATION": "full",
    }
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "auto_review", "gateway"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        info = None
        for _ in range(300):  # readiness by polling, not by timing
            if proc.poll() is not None:
                break
            try:
                info = json.loads(_get(f"http://127.0.0.1:{port}/info"))
                break
            except OSError:
                time.sleep(0.1)
        assert info is not None, (tmp_path / "gateway.log").read_text()[-3000:]
        assert _get(f"http://127.0.0.1:{port}/healthz").strip() == b"ok"
        isolation = info["isolation"]
        assert isolation["tier"] == "full"
        for control in (
            "pid_namespace",
            "mnt_namespace",
            "seccomp",
            "no_new_privs",
            "capabilities",
        ):
            assert isolation["controls"][control] == "on", control
        assert isolation["controls"]["net_namespace"] == "off"  # host network, by design
        # ... while the clone jobs its job server runs reach the forge only through the proxy
        assert isolation["controls"]["clone_egress"] == "on"
        assert "token-0123456789abcdef" not in json.dumps(info)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "gateway.log").read_text()[-3000:]
    assert (tmp_path / "state").is_dir()

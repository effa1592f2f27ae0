"""Run the gateway as a real child process against the fake forge, and read its state.

``GatewayProcess`` starts ``auto-review gateway --bare`` (or, for review jobs, ``python -m
tests.e2e.gateway_entry``, which calls the same ``serve()`` with a test pipeline), waits for
``/healthz``, and can SIGKILL or SIGTERM it. The state database is read read-only from here.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
AUTO_REVIEW = Path(sys.executable).parent / "auto-review"
SECRET = "w" * 40
CI_TOKEN = "c" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """One gateway child process with its own state directory and port."""

    def __init__(
        self,
        state_dir: Path,
        *,
        forge_url: str,
        forge_token: str,
        argv: Sequence[str] = (str(AUTO_REVIEW), "gateway", "--bare"),
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        cwd: Path = REPO_ROOT,
        umask: int = -1,
    ) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = list(argv)
        # Elsewhere than the state dir when the test leaves creating that to the gateway.
        self.log = log or state_dir / "gateway.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(state_dir),
            "FORGEJO_BASE_URL": forge_url,
            "AR_FORGEJO_TOKEN": forge_token,
            "WEBHOOK_SECRET": SECRET,
            "AR_CI_REVIEW_TOKEN": CI_TOKEN,
            "LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
            "AR_STATE_DIR": str(state_dir),
            "AR_GATEWAY_BIND": f"127.0.0.1:{self.port}",
            "AR_POLL_INTERVAL_SECS": "0",
            "AR_LOG_FORMAT": "json",
            "PYTHONPATH": str(REPO_ROOT),
            **dict(env or {}),
        }
        # A service manager's start: systemd runs a system service in / with its UMask=.
        self.cwd, self.umask = cwd, umask
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.cwd,
                umask=self.umask,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("gateway did not become healthy")

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def review_via_ci(self, pr_number: int, head_sha: str, *, limit_secs: float) -> None:
        """Ask for a review of alice/demo#PR_NUMBER at HEAD_SHA through ``/reviews/ci`` and
        wait until that one job has posted its review."""
        body = {"owner": "alice", "repo": "demo", "pr_number": pr_number, "head_sha": head_sha}
        headers = {"Authorization": f"Bearer {CI_TOKEN}"}
        queued = httpx.post(f"{self.url}/reviews/ci", json=body, headers=headers, timeout=10)
        assert queued.status_code == 202, queued.text
        wait_until(
            lambda: [j["state"] for j in self.jobs()] in (["done"], ["failed"]),
            limit_secs=limit_secs,
            what="the review job to end",
        )
        [job] = self.jobs()
        assert (job["state"], job["result"]) == ("done", "posted"), job["reason"]

    def jobs(self) -> list[dict[str, object]]:
        """Every job row, read-only."""
        db = self.state_dir / "auto-review.sqlite3"
        if not db.exists():
            return []
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY id")]
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()


def wait_until(predicate: object, *, limit_secs: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit_secs
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")

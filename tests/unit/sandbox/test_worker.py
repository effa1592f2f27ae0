"""run_callable: a fresh, confined interpreter that imports the target by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import require

from auto_review.sandbox import SandboxJobFailed, Tier, run_callable, run_policy
from auto_review.sandbox._worker import main as worker_main

JOBS = """
import json, os, sys

def inspect(payload: bytes) -> bytes:
    print("noise that must not reach the result")
    return json.dumps({
        "payload": payload.decode(),
        "env": sorted(os.environ),
        "modules": sorted(m for m in sys.modules if m.startswith(("pytest", "_pytest"))),
        "ours": sorted(m for m in sys.modules if m.startswith("auto_review")),
        "seccomp": [l for l in open("/proc/self/status") if l.startswith("Seccomp:")][0].split()[1],
        "uid": os.getuid(),
    }).encode()

def boom(payload: bytes) -> bytes:
    raise ValueError("the job itself failed")

def not_bytes(payload: bytes) -> str:
    return "text"
"""


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    (tmp_path / "sandbox_jobs.py").write_text(JOBS)
    tmp_path.chmod(0o755)  # root-started jobs run as host nobody
    return tmp_path


@pytest.mark.sandbox
def test_callable_runs_in_a_fresh_confined_interpreter_without_the_callers_secrets(
    jobs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(Tier.FULL)
    monkeypatch.setenv("LLM_API_KEY", "sk-host-secret")
    raw = run_callable(
        "sandbox_jobs:inspect", b"hello", run_policy(), timeout=60, pythonpath=[str(jobs_dir)]
    )
    seen = json.loads(raw)
    assert seen["payload"] == "hello"
    assert "LLM_API_KEY" not in seen["env"]
    assert seen["modules"] == []  # nothing of the caller's interpreter (pytest) is in memory
    # The worker's start loads the package's errors only, not the spawn path or the launcher:
    # each analysis task of a review pays for this import.
    assert set(seen["ours"]) <= {
        "auto_review",
        "auto_review.sandbox",
        "auto_review.sandbox._worker",
        "auto_review.sandbox._worker_entry",
        "auto_review.sandbox.errors",
    }, seen["ours"]
    assert seen["seccomp"] == "2"
    assert seen["uid"] == 1000


@pytest.mark.sandbox
def test_callable_failure_is_a_job_error_carrying_the_traceback(jobs_dir: Path) -> None:
    require(Tier.FULL)
    with pytest.raises(SandboxJobFailed, match="the job itself failed") as caught:
        run_callable("sandbox_jobs:boom", b"", run_policy(), timeout=60, pythonpath=[str(jobs_dir)])
    assert caught.value.returncode == 1
    with pytest.raises(SandboxJobFailed, match="not bytes"):
        run_callable(
            "sandbox_jobs:not_bytes", b"", run_policy(), timeout=60, pythonpath=[str(jobs_dir)]
        )


def test_worker_refuses_a_target_without_a_function_name() -> None:
    assert worker_main(["just_a_module"]) == 2


def test_run_callable_refuses_a_malformed_target() -> None:
    with pytest.raises(ValueError, match=r"package\.module:function"):
        run_callable("no_colon", b"", run_policy(), timeout=1)


def test_worker_module_imports_nothing_of_auto_review() -> None:
    source = Path(__file__).resolve().parents[3] / "src/auto_review/sandbox/_worker.py"
    imports = [ln for ln in source.read_text().splitlines() if ln.startswith(("import", "from"))]
    assert not [ln for ln in imports if "auto_review" in ln]

"""Start-up cost of the one-file executable against the same code run by its build Python.

Measures, in one run and interleaved so that machine load hits both alike:

- the median wall time of ``auto-review --version`` from the built file (each run a new process,
  so each run unpacks the bundle again: what an operator's every command pays);
- the median wall time of ``python -m auto_review --version`` with the build virtualenv's Python;
- their ratio (target <= 3) and the executable's size (target <= 80 MB);
- the same pair for a sandbox job's worker start (``<file> __auto_review_sandbox_worker__`` and
  ``python -m auto_review.sandbox._worker_entry``, each calling ``base64:b64encode``), and the
  built worker's start as a fraction of the built ``--version``: each analysis task of a review
  pays for it, and it must stay below a CLI start (the worker is recognised before the CLI is
  imported);
- the gateway's start-to-ready time (process start until ``/healthz`` answers 200) from the
  built file and from the build Python, in the full tier when this build can give it, else bare
  (the gateway needs no reachable forge or model to become ready; nothing leaves 127.0.0.1).

The OS page cache stays warm (dropping it would disturb everything else on the machine); the
numbers are start-up cost, not disk speed. Usage:

    python bench/binary_startup.py [--binary dist/auto-review]
        [--python build/release/venv/bin/python] [--runs 21] [--check]

``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE_TARGET_MB = 80.0
RATIO_TARGET = 3.0


def _time_once(command: list[str], env: dict[str, str], stdin: bytes) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, input=stdin, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _medians(
    commands: list[list[str]], env: dict[str, str], runs: int, stdin: bytes
) -> list[float]:
    """Median wall time of each command, run interleaved after one untimed run each (the first
    start also fills the page cache and the bytecode cache)."""
    for command in commands:
        _time_once(command, env, stdin)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, samples in zip(commands, times, strict=True):
            samples.append(_time_once(command, env, stdin))
    return [statistics.median(samples) for samples in times]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gateway_ready_secs(command: list[str], tier: str) -> float | None:
    """Seconds from start until /healthz answers 200; None if the gateway exits first."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="ar-bench-") as state:
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": state,
            "AR_STATE_DIR": state,
            "AR_ISOLATION": tier,
            "AR_GATEWAY_BIND": f"127.0.0.1:{port}",
            "AR_POLL_INTERVAL_SECS": "0",
            # Closed loopback ports: readiness of the process itself, not of its upstreams.
            "FORGEJO_BASE_URL": "http://127.0.0.1:9",
            "AR_FORGEJO_TOKEN": "bench-token-0123456789",
            "LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "WEBHOOK_SECRET": "b" * 40,
        }
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=state
        )
        try:
            deadline = started + 60
            while time.perf_counter() < deadline and proc.poll() is None:
                try:
                    url = f"http://127.0.0.1:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=1) as response:
                        if response.status == 200:
                            return time.perf_counter() - started
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.01)
            return None
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _gateway(binary: Path, python: Path, runs: int) -> None:
    frozen = [str(binary), "gateway"]
    source = [str(python), "-m", "auto_review", "gateway"]
    tier, mode = "full", "full tier"
    if _gateway_ready_secs(frozen, tier) is None:
        tier, mode = "none", "bare: this build cannot start the gateway in the full tier"
        frozen, source = [*frozen, "--bare"], [*source, "--bare"]
        if _gateway_ready_secs(frozen, tier) is None:
            print("gateway start-to-ready: the built gateway did not become ready")
            return
    frozen_times, source_times = [], []
    for _ in range(runs):
        frozen_times.append(_gateway_ready_secs(frozen, tier))
        source_times.append(_gateway_ready_secs(source, tier))
    if None in frozen_times or None in source_times:
        print("gateway start-to-ready: a gateway exited before it was ready")
        return
    frozen_median = statistics.median(t for t in frozen_times if t is not None)
    source_median = statistics.median(t for t in source_times if t is not None)
    print(f"gateway start-to-ready ({mode}), {runs} runs each:")
    print(f"  built file                    median {frozen_median * 1000:7.1f} ms")
    print(f"  python -m auto_review         median {source_median * 1000:7.1f} ms")
    print(f"  ratio built / python:         {frozen_median / source_median:.2f}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "dist" / "auto-review")
    parser.add_argument(
        "--python", type=Path, default=ROOT / "build" / "release" / "venv" / "bin" / "python"
    )
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--gateway-runs", type=int, default=5, help="0 skips the gateway")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    for path, hint in ((args.binary, "packaging/build"), (args.python, "packaging/build")):
        if not path.exists():
            print(f"{path} does not exist: run {hint} first", file=sys.stderr)
            return 2

    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    frozen = [str(args.binary), "--version"]
    source = [str(args.python), "-m", "auto_review", "--version"]
    frozen_median, source_median = _medians([frozen, source], env, args.runs, b"")
    worker = ["__auto_review_sandbox_worker__", "base64:b64encode"]
    worker_frozen, worker_source = _medians(
        [
            [str(args.binary), *worker],
            [str(args.python), "-I", "-B", "-m", "auto_review.sandbox._worker_entry", worker[1]],
        ],
        env,
        args.runs,
        b"payload",
    )
    ratio = frozen_median / source_median
    size_mb = args.binary.stat().st_size / 1_000_000
    size_ok, ratio_ok = size_mb <= SIZE_TARGET_MB, ratio <= RATIO_TARGET

    print(f"runs each:                      {args.runs} (interleaved)")
    print(f"auto-review --version (built):  median {frozen_median * 1000:7.1f} ms")
    print(f"python -m auto_review --version median {source_median * 1000:7.1f} ms")
    print(
        f"ratio built / python:           {ratio:.2f}  (target <= {RATIO_TARGET:g}: "
        f"{'met' if ratio_ok else 'MISSED'})"
    )
    print(
        f"executable size:                {size_mb:.1f} MB  (target <= {SIZE_TARGET_MB:g} MB: "
        f"{'met' if size_ok else 'MISSED'})"
    )
    print(f"sandbox worker start (built):   median {worker_frozen * 1000:7.1f} ms")
    print(f"sandbox worker start (python):  median {worker_source * 1000:7.1f} ms")
    print(
        f"worker / --version, built:      {worker_frozen / frozen_median:.2f}"
        "  (below 1: the worker imports no CLI)"
    )
    if args.gateway_runs > 0:
        _gateway(args.binary, args.python, args.gateway_runs)
    return 1 if args.check and not (size_ok and ratio_ok) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Benchmark: the cost of a sandboxed `/bin/true`, and of starting the gateway in its sandbox.

In one run, the median wall time to run /bin/true
  (a) plain: fork + exec, no isolation;
  (b) bubblewrap with equivalent isolation: all namespaces, the `run` policy's read-only system
      binds, fresh /proc, minimal /dev, tmpfs /tmp, no capabilities, new session, and our own
      seccomp program passed with --seccomp (bwrap has no Landlock and sets no rlimits);
  (c) our `run` policy through the spawn API (`run_command`), tier full;
and prints b/a and c/b (target: c/b <= 1.5). Then the gateway's start-to-ready time (process
start until GET /healthz answers 200) in the full tier against the bare tier; a tier that cannot
start here is reported and skipped.

usage: python bench/sandbox_spawn.py [--runs N] [--gateway-runs N] [--cpu]
(--cpu: then each case again, run after run, with the CPU all cores spent per spawn.)
Debian's bubblewrap is installed with apt-get when missing and we are root; otherwise (b) is
skipped with the reason. Only loopback is used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from auto_review.sandbox import Tier, run_command, run_policy
from auto_review.sandbox.policy import SYSTEM_READ_ONLY
from auto_review.sandbox.seccomp import NO_NETWORK_FAMILIES, assemble, build_filter

TRUE = "/bin/true"
TARGET_C_OVER_B = 1.5


def _ensure_bwrap() -> str | None:
    """Path of bwrap, installing Debian's package when missing (root only); None if absent."""
    found = shutil.which("bwrap")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "bubblewrap"],
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "bubblewrap"],
    ):
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        if shutil.which("bwrap"):
            break
    return shutil.which("bwrap")


def _bwrap_argv(bwrap: str, seccomp_fd: int) -> list[str]:
    """bwrap options matching the `run` policy's full-tier view as closely as bwrap can."""
    argv = [
        bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--uid", "1000", "--gid", "1000", "--hostname", "auto-review-sandbox",
    ]  # fmt: skip
    for path in SYSTEM_READ_ONLY:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            argv += ["--ro-bind", path, path]
    size = str(run_policy().tmp_size_bytes)
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp"]
    return [*argv, "--seccomp", str(seccomp_fd), TRUE]


def _time(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _plain() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.execv(TRUE, [TRUE])  # noqa: S606 - the plain fork+exec baseline
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("plain /bin/true failed")


def _bubblewrap(bwrap: str, program: bytes) -> Callable[[], None]:
    def run() -> None:
        read_fd, write_fd = os.pipe()
        try:
            os.write(write_fd, program)  # a few hundred bytes: fits the pipe buffer
            os.close(write_fd)
            write_fd = -1
            proc = subprocess.run(
                _bwrap_argv(bwrap, read_fd), pass_fds=(read_fd,), capture_output=True, check=False
            )
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        if proc.returncode != 0:
            raise RuntimeError(f"bwrap failed: {proc.stderr.decode(errors='replace').strip()}")

    return run


def _ours() -> None:
    done = run_command([TRUE], run_policy(), timeout=60, isolation=Tier.FULL)
    if done.returncode != 0:
        raise RuntimeError(f"sandboxed /bin/true failed: {done.stderr!r}")


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _busy_ticks() -> int:
    """Clock ticks every CPU spent not idle since boot (/proc/stat's first line)."""
    with open("/proc/stat", encoding="ascii") as fh:
        ticks = [int(field) for field in fh.readline().split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4]  # less idle and iowait


def bench_cpu(cases: dict[str, Callable[[], None]], runs: int) -> None:
    """Per case, run after run: wall time and CPU busy on all cores per spawn, which tells a
    spawn that waits from one that computes (kernel work of every process counts, also the
    asynchronous teardown of namespaces). Other load on the machine counts too."""
    print(f"CPU busy on all cores per spawn, {runs} runs in a row per case:")
    hertz = os.sysconf("SC_CLK_TCK")
    for name, fn in cases.items():
        busy, start = _busy_ticks(), time.perf_counter()
        for _ in range(runs):
            fn()
        wall = (time.perf_counter() - start) / runs * 1000
        cpu = (_busy_ticks() - busy) / hertz / runs * 1000
        print(f"  {name:8} wall {wall:7.2f} ms   cpu {cpu:7.2f} ms")


def bench_spawn(runs: int, cpu: bool = False) -> None:
    """Measure (a), (b), (c) interleaved, so drift hits all three alike, and print ratios."""
    bwrap = _ensure_bwrap()
    program = assemble(build_filter(NO_NETWORK_FAMILIES))
    cases: dict[str, Callable[[], None]] = {"a_plain": _plain, "c_ours": _ours}
    skip_b = ""
    if bwrap is None:
        skip_b = "bubblewrap is not installed and could not be (needs root and apt-get)"
    else:
        try:
            _bubblewrap(bwrap, program)()
            cases["b_bwrap"] = _bubblewrap(bwrap, program)
        except RuntimeError as exc:
            skip_b = str(exc)
    for fn in cases.values():  # warm caches (page cache, imports, the host probe)
        for _ in range(3):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            samples[name].append(_time(fn))
    a = _median_ms(samples["a_plain"])
    c = _median_ms(samples["c_ours"])
    print(f"/bin/true, median of {runs} runs each (uid {os.geteuid()}):")
    print(f"  (a) plain fork+exec            {a:8.2f} ms")
    if "b_bwrap" in samples:
        b = _median_ms(samples["b_bwrap"])
        print(f"  (b) bubblewrap, equivalent     {b:8.2f} ms")
        print(f"  (c) auto-review run policy     {c:8.2f} ms")
        verdict = "meets" if c / b <= TARGET_C_OVER_B else "MISSES"
        print(f"  b/a = {b / a:.2f}")
        print(f"  c/b = {c / b:.2f}  ({verdict} the target c/b <= {TARGET_C_OVER_B})")
    else:
        print(f"  (b) bubblewrap: skipped: {skip_b}")
        print(f"  (c) auto-review run policy     {c:8.2f} ms")
        print(f"  c/a = {c / a:.2f}  (b/a and c/b need bubblewrap)")
    if cpu:
        bench_cpu(cases, runs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gateway_ready_seconds(bare: bool, state: Path) -> tuple[float | None, str]:
    """Start the gateway once; seconds until /healthz answers 200, or None and why not."""
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
        "FORGEJO_BASE_URL": "http://127.0.0.1:9",  # discard port: nothing is ever sent
        "AR_FORGEJO_TOKEN": "bench-not-a-real-token",
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "WEBHOOK_SECRET": "bench-webhook-secret-" + "x" * 32,
        "AR_GATEWAY_BIND": f"127.0.0.1:{port}",
        "AR_STATE_DIR": str(state),
        "AR_POLL_INTERVAL_SECS": "0",
        "AR_ISOLATION": "none" if bare else "full",
    }
    argv = [sys.executable, "-m", "auto_review", "gateway", *(["--bare"] if bare else [])]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        while time.perf_counter() - start < 60:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                return None, lines[0] if lines else f"exited {proc.returncode}"
            try:
                url = f"http://127.0.0.1:{port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start, ""
            except OSError:
                time.sleep(0.02)
        return None, "not ready within 60 s"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def bench_gateway(runs: int) -> None:
    """Median start-to-ready of the gateway, full tier against bare."""
    print(f"gateway start-to-ready, median of {runs} starts:")
    results: dict[str, float] = {}
    for label, bare in (("bare", True), ("full", False)):
        samples: list[float] = []
        reason = ""
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="ar-bench-state-") as state:
                seconds, reason = _gateway_ready_seconds(bare, Path(state))
            if seconds is None:
                break
            samples.append(seconds)
        if samples and len(samples) == runs:
            results[label] = statistics.median(samples)
            print(f"  {label:4} tier: {results[label] * 1000:8.1f} ms")
        else:
            print(f"  {label:4} tier: skipped: {reason}")
    if len(results) == 2:
        print(f"  full/bare = {results['full'] / results['bare']:.2f}")


def main() -> int:
    """Run both benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=50, help="runs per /bin/true case")
    parser.add_argument(
        "--gateway-runs", type=int, default=5, help="gateway starts per tier (0 skips them)"
    )
    parser.add_argument("--cpu", action="store_true", help="also CPU per spawn, case by case")
    args = parser.parse_args()
    bench_spawn(args.runs, cpu=args.cpu)
    if args.gateway_runs > 0:
        bench_gateway(args.gateway_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start-up cost of the one-file executable against the same code run by its build Python.

Measures, in one run and interleaved so that machine load hits both alike:

- the median wall time of ``auto-review --version`` from the built file (each run a new process,
  so each run unpacks the bundle again: what an operator's every command pays);
- the median wall time of ``python -m auto_review --version`` with the build virtualenv's Python;
- their ratio (target <= 3) and the executable's size (target <= 80 MB).

The OS page cache stays warm (dropping it would disturb everything else on the machine); the
numbers are start-up cost, not disk speed. Usage:

    python bench/binary_startup.py [--binary dist/auto-review]
        [--python build/release/venv/bin/python] [--runs 21] [--check]

``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE_TARGET_MB = 80.0
RATIO_TARGET = 3.0


def _time_once(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "dist" / "auto-review")
    parser.add_argument(
        "--python", type=Path, default=ROOT / "build" / "release" / "venv" / "bin" / "python"
    )
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    for path, hint in ((args.binary, "packaging/build"), (args.python, "packaging/build")):
        if not path.exists():
            print(f"{path} does not exist: run {hint} first", file=sys.stderr)
            return 2

    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    frozen = [str(args.binary), "--version"]
    source = [str(args.python), "-m", "auto_review", "--version"]
    # One untimed run each: the first start also fills the page cache and the bytecode cache.
    _time_once(frozen, env)
    _time_once(source, env)
    frozen_times, source_times = [], []
    for _ in range(args.runs):
        frozen_times.append(_time_once(frozen, env))
        source_times.append(_time_once(source, env))

    frozen_median = statistics.median(frozen_times)
    source_median = statistics.median(source_times)
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
    print("gateway start-to-ready (built): not measured yet (needs the sandboxed gateway CLI)")
    return 1 if args.check and not (size_ok and ratio_ok) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

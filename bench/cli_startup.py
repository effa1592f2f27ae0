"""Start-up cost of ``auto-review`` commands run from source, against the bare interpreter.

Measures, in one run and interleaved so that machine load hits every case alike, the median
wall time of (each run a new process):

- ``python -c pass``: the interpreter's own start, the baseline;
- ``python -m auto_review --version``;
- ``python -m auto_review sandbox check --json`` (probes the host and confines ``true``; exit 1
  on a host that cannot hold the tier is fine: it starts the same way);
- ``python -c "import <every command group's module>"``: what each command paid when the root
  imported every group up front;

and prints each as a ratio to the baseline. The OS page cache and the bytecode cache are warm
(one untimed run of each first). Usage:

    python bench/cli_startup.py [--python .venv/bin/python] [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from auto_review.cli.main import COMMANDS


def _time_once(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    # check=False: sandbox check exits 1 where the tier cannot hold, after the same start.
    subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _medians(commands: list[list[str]], env: dict[str, str], runs: int) -> list[float]:
    for command in commands:
        _time_once(command, env)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, samples in zip(commands, times, strict=True):
            samples.append(_time_once(command, env))
    return [statistics.median(samples) for samples in times]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args(argv)
    python = str(args.python)
    every_group = "import " + ", ".join(sorted({entry.module for entry in COMMANDS.values()}))
    cli = [python, "-m", "auto_review"]
    cases = {
        "python -c pass (baseline)": [python, "-c", "pass"],
        "auto-review --version": [*cli, "--version"],
        "auto-review sandbox check --json": [*cli, "sandbox", "check", "--json"],
        "import every command group": [python, "-c", every_group],
    }
    with tempfile.TemporaryDirectory(prefix="ar-bench-") as state:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": state, "AR_STATE_DIR": state}
        medians = _medians(list(cases.values()), env, args.runs)
    baseline = medians[0]
    print(f"python: {python}; {args.runs} runs each, interleaved")
    for label, median in zip(cases, medians, strict=True):
        print(f"  {label:34} median {median * 1000:7.1f} ms  ({median / baseline:5.2f}x baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

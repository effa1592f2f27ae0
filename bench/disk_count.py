"""Benchmark: the disk cap's confirming count over a tree of N files, and its start cost.

Builds a tree of N small files (100 per directory) in a fresh directory under DIR, then times
(medians of --runs, warm page cache):
  - ``_diskcount.count`` over it, counting nothing (every inode older than the start), i.e. the
    walk a job with a pre-existing tree of that size pays when a count runs;
  - ``diskcap.open_watch`` of an empty place, confined (the count's marks taken) and not.

usage: python bench/disk_count.py [--files N ...] [--runs N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

from auto_review.sandbox import _diskcount, diskcap


def _median_ms(func: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        func()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def _tree(top: str, files: int) -> None:
    for n in range(files):
        directory = os.path.join(top, f"d{n // 100}")
        if n % 100 == 0:
            os.mkdir(directory)
        with open(os.path.join(directory, f"f{n}"), "wb") as fh:
            fh.write(b"x" * 100)


def _time_count(top: str, runs: int) -> float:
    place = os.open(top, os.O_PATH | os.O_CLOEXEC)
    try:
        devices = frozenset({os.fstat(place).st_dev})
        time.sleep(1.1)  # past the count's ctime slack: nothing in the tree is the job's
        start = _diskcount.job_start()
        held = _diskcount.count([place], devices, start, [])
        assert not held.unconfirmed, held
        assert held.bytes == 0, held
        return _median_ms(lambda: _diskcount.count([place], devices, start, []), runs)
    finally:
        os.close(place)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    for files in args.files:
        top = tempfile.mkdtemp(prefix="ar-bench-count-", dir=args.dir)
        try:
            _tree(top, files)
            ms = _time_count(top, args.runs)
            print(f"count over {files} files: {ms:.1f} ms ({ms * 1000 / files:.2f} us per file)")
        finally:
            shutil.rmtree(top)
    empty = tempfile.mkdtemp(prefix="ar-bench-watch-", dir=args.dir)
    try:
        for confined in (False, True):
            watch = diskcap.DiskWatch((empty,), 1 << 30, confined)

            def open_and_close(watch: diskcap.DiskWatch = watch) -> None:
                for fd in diskcap.open_watch(watch).places:  # the supervisor's die with it
                    os.close(fd)

            ms = _median_ms(open_and_close, max(args.runs, 1000))
            print(f"open_watch of an empty place, confined={confined}: {ms * 1000:.1f} us")
    finally:
        os.rmdir(empty)


if __name__ == "__main__":
    main()

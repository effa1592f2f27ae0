"""``python -m auto_review.sandbox._worker_entry``: the worker's command-line entry.

A module of its own because the package imports ``_worker`` (for the frozen-build marker), and
``-m`` on an already-imported module makes runpy warn.
"""

from __future__ import annotations

import sys

from auto_review.sandbox._worker import main

__all__: list[str] = []

sys.exit(main(sys.argv[1:]))

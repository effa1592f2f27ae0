"""Entry script of the one-file build: the same ``main`` as the ``auto-review`` console script.

A sandbox job's worker re-executes this file (``spawn.worker_argv``); it is recognised before
the CLI is imported, so each analysis task does not pay for typer, httpx and every command.
"""

import sys

from auto_review.sandbox import WORKER_ARGV_MARKER, worker_main

if sys.argv[1:2] == [WORKER_ARGV_MARKER]:
    sys.exit(worker_main(sys.argv[2:]))

from auto_review.cli.main import main

main()

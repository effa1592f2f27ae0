"""``auto-review gateway`` with a probe in the inner gateway's place, for red-team tests.

    python -m tests.redteam.gateway_inner_probe PYTHON PYPROBE ATTACK=ARG...

Everything before the inner process is the shipped code path: settings and secrets from the
environment, the state dir, the ``gateway`` policy, the tier, the secret handoff on fd 3, the job
server. Only the argv the launcher execs is replaced, by a shell that runs ``PYTHON -I -S
PYPROBE ATTACK ARG`` for each pair, so each attack runs with exactly the confinement the real
gateway gets. The probes' JSON lines go to this process's stdout; its exit status is the CLI's.
The launcher's own pid is available to the attacks as ``{launcher}`` (its environ holds the
secrets).
"""

from __future__ import annotations

import os
import sys

from auto_review.cli import _gateway_sandbox
from auto_review.cli.main import main

_SCRIPT = (
    'py=$1; probe=$2; shift 2; for t in "$@"; do "$py" -I -S "$probe" "${t%%=*}" "${t#*=}"; done'
)


def _probe_argv(python: str, probe: str, attacks: list[str]) -> list[str]:
    launcher = str(os.getpid())
    return ["/bin/sh", "-c", _SCRIPT, "sh", python, probe] + [
        a.replace("{launcher}", launcher) for a in attacks
    ]


if __name__ == "__main__":
    python, probe, *attacks = sys.argv[1:]
    argv = _probe_argv(python, probe, attacks)
    _gateway_sandbox._inner_argv = lambda: argv  # the one substitution; see the docstring
    sys.argv = ["auto-review", "gateway"]
    main()

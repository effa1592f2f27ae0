"""``auto-review gateway [--bare]``: run the review service.

Default: the isolation tier in ``AR_ISOLATION`` (``full`` unless set) is established by the
sandbox launcher, whose confined inner process calls ``auto_review.gateway.serve``. ``--bare``
(or ``AR_ISOLATION=none``) runs the service in this process with application-level controls
only, after a loud warning. A tier that cannot be established is refused, never downgraded.
"""

from __future__ import annotations

import typer

from auto_review.cli._common import err_console, load
from auto_review.errors import ConfigError
from auto_review.gateway import bare_posture, serve
from auto_review.settings import GATEWAY_REQUIRED, Isolation

__all__ = ["gateway"]

BARE_WARNING = (
    "bare mode: the gateway runs WITHOUT the built-in sandbox (no namespaces, seccomp or "
    "Landlock); only application-level controls are active. Use it for development and tests, "
    "or inside isolation you provide yourself."
)


def gateway(
    bare: bool = typer.Option(
        False, "--bare", help="Run in this process without the sandbox (loud warning)."
    ),
) -> None:
    """Receive webhooks and CI triggers, review pull requests, answer chat mentions."""
    settings = load(require=GATEWAY_REQUIRED)
    if bare or settings.isolation is Isolation.NONE:
        err_console.print(f"[bold red]WARNING:[/] {BARE_WARNING}")
        serve(settings, posture=bare_posture)
        return
    # The sandbox launcher is wired in here by the sandbox package; until this build has it,
    # the requested tier cannot be established, and we refuse rather than run unconfined.
    raise ConfigError(
        f"isolation tier '{settings.isolation.value}' cannot be established: this build has no "
        "sandbox launcher",
        (
            f"AR_ISOLATION={settings.isolation.value} needs the sandbox launcher",
            "run `auto-review gateway --bare` (or set AR_ISOLATION=none) to run without it",
        ),
    )

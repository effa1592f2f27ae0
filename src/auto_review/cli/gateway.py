"""``auto-review gateway [--bare]``: run the review service.

Default: the isolation tier in ``AR_ISOLATION`` (``full`` unless set) is established by the
sandbox launcher, whose confined inner process calls ``auto_review.gateway.serve``. ``--bare``
(or ``AR_ISOLATION=none``) runs the service in this process with application-level controls
only, after a loud warning. A tier that cannot be established is refused, never downgraded.
"""

from __future__ import annotations

import os

import typer

from auto_review.cli._common import err_console, load
from auto_review.cli._gateway_sandbox import launch_gateway, serve_inner
from auto_review.sandbox import is_inner
from auto_review.settings import GATEWAY_REQUIRED, Isolation

__all__ = ["app", "gateway"]

BARE_WARNING = (
    "bare mode: the gateway runs WITHOUT the built-in sandbox (no namespaces, seccomp or "
    "Landlock); only application-level controls are active. Use it for development and tests, "
    "or inside isolation you provide yourself."
)

app = typer.Typer(add_completion=False)


@app.command("gateway")
def gateway(
    bare: bool = typer.Option(
        False, "--bare", help="Run in this process without the sandbox (loud warning)."
    ),
) -> None:
    """Receive webhooks and CI triggers, review pull requests, answer chat mentions."""
    # The service (web stack, review pipeline: half this command's imports) is imported only
    # where it runs, bare or in the inner process: the launcher outside the sandbox needs
    # none of it, and the inner process starts only once the launcher has.
    if is_inner(os.environ):  # started by the sandbox launcher: secrets arrive on a pipe
        from auto_review.gateway import serve  # noqa: PLC0415

        serve_inner(os.environ, serve)
        return
    settings = load(require=GATEWAY_REQUIRED)
    if bare or settings.isolation is Isolation.NONE:
        from auto_review.gateway import bare_posture, serve  # noqa: PLC0415

        err_console.print(f"[bold red]WARNING:[/] {BARE_WARNING}")
        serve(settings, posture=bare_posture)
        return
    # The tier is established by the sandbox launcher or refused (KernelFeatureMissing).
    raise typer.Exit(launch_gateway(settings, os.environ))

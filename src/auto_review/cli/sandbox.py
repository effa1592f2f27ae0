"""``auto-review sandbox``: what this host's sandbox supports, and running commands confined.

``sandbox check [--json] [--isolation TIER]`` probes the host, then confines ``true`` under the
``run`` policy and prints every control with its state read back from inside. Exit 0 when the
tier holds, 1 when it cannot (the diagnosis names the missing feature and the fix).

``sandbox run [--policy NAME] [--ro PATH]... [--rw PATH]... [--net] [--port N]... [--listen N]
[--egress HOST:PORT]... [--timeout S] [--memory SIZE] [--disk SIZE] [--isolation TIER]
[--cwd DIR] -- CMD [ARG...]`` runs CMD confined (``clone`` takes ``--egress``: the only
host:port it may reach). In the full tier, once CMD ended, each connection its egress proxy
refused is printed on stderr, one line each (``egress refused: STATUS REASON (HOST:PORT)``);
the exit status stays CMD's.

Exit codes of ``sandbox run``:
    0-119, 128+N   CMD's own exit status (128+N when CMD was killed by signal N)
    120            sandbox setup failed (the message names the step, path and errno)
    121            CMD passed the --timeout deadline; its whole process tree was killed
    122            CMD hit a resource limit (CPU time, file size, output, disk)
    123            policy violation: CMD was killed by seccomp (SIGSYS), or the posture read
                   back from inside disagreed with the policy
    124            the requested isolation tier is unavailable on this host
    125            the policy or the option combination was refused before starting
    126, 127       CMD is not executable / was not found inside the sandbox
"""

from __future__ import annotations

import io
import math
import os
import sys
from pathlib import Path
from typing import Any, cast

import typer
from rich.table import Table

from auto_review.cli._common import JSON_OPTION, err_console, load, out_console, print_json
from auto_review.sandbox import (
    CompletedRun,
    EgressReport,
    KernelFeatureMissing,
    Policy,
    SandboxError,
    SandboxPolicyInvalid,
    Tier,
    build_policy,
    parse_egress,
    probe_host,
    require_tier,
    run_attached,
    run_command,
    run_policy,
)

app = typer.Typer(help="Inspect the built-in sandbox and run commands in it.", no_args_is_help=True)

_ISOLATION_HELP = "Isolation tier: full, restricted or none (default: AR_ISOLATION, else full)."
_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


def _tier(value: str | None) -> Tier:
    if value is None:
        return Tier(str(load().isolation))
    try:
        return Tier(value)
    except ValueError:
        raise SandboxPolicyInvalid(
            f"--isolation {value!r}: choose full, restricted or none"
        ) from None


def _size(value: str | None, option: str = "--memory") -> int | None:
    if value is None:
        return None
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    factor = _UNITS.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in _UNITS else text
    if not digits.isdigit() or int(digits) <= 0:
        raise SandboxPolicyInvalid(f"{option} {value!r}: give bytes or a size like 512M or 2G")
    return int(digits) * factor


@app.command("check")
def check(
    as_json: bool = JSON_OPTION,
    isolation: str | None = typer.Option(None, "--isolation", help=_ISOLATION_HELP),
) -> None:
    """Print the tier this host supports and every control's state; exit 1 if TIER cannot hold."""
    tier = _tier(isolation)
    support = probe_host()
    data: dict[str, object] = {"requested": str(tier), "host": support.to_dict()}
    try:
        require_tier(tier, support)
    except KernelFeatureMissing as exc:
        data.update(supported=False, feature=exc.feature, fix=exc.fix, problem=exc.message)
    else:
        confined = run_command(["true"], run_policy(), timeout=60, isolation=tier)
        data.update(supported=True, posture=confined.posture.to_dict())
    if as_json:
        print_json(data)
    else:
        _render(data)
    if not data["supported"]:
        raise typer.Exit(1)


def _render(data: dict[str, object]) -> None:
    host = cast(dict[str, Any], data["host"])
    out_console.print(f"best tier on this host: [bold]{host['best_tier']}[/]")
    if not data["supported"]:
        err_console.print(f"[red]tier {data['requested']} is unavailable:[/] {data['problem']}")
        return
    posture = cast(dict[str, Any], data["posture"])
    table = Table("control", "state", "reason", title=f"tier {data['requested']} (read back)")
    colour = {"on": "green", "off": "yellow", "unavailable": "red"}
    for control in posture["controls"]:
        state = control["state"]
        table.add_row(control["name"], f"[{colour[state]}]{state}[/]", control["reason"])
    out_console.print(table)


def _stdio_fds() -> tuple[int, int, int] | None:
    """Our real stdio fds, or None when they are not real (an in-process test runner)."""
    try:
        return sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


@app.command("run")
def run(  # noqa: PLR0917 - typer maps each option to a parameter
    command: list[str] = typer.Argument(..., help="The command and its arguments (after --)."),  # noqa: B008
    policy: str = typer.Option("run", "--policy", help="run, clone, analyze or gateway."),
    ro: list[Path] = typer.Option([], "--ro", help="Extra host path visible read-only."),  # noqa: B008
    rw: list[Path] = typer.Option([], "--rw", help="Host path visible read-write."),  # noqa: B008
    net: bool = typer.Option(False, "--net", help="Share the host network (policy run)."),
    port: list[int] = typer.Option([], "--port", help="TCP port to allow connecting to."),  # noqa: B008
    listen: int | None = typer.Option(None, "--listen", help="TCP port to listen on (gateway)."),
    egress: list[str] = typer.Option(  # noqa: B008
        [], "--egress", help="HOST:PORT a clone may reach (full tier: via the egress proxy)."
    ),
    timeout: float = typer.Option(600.0, "--timeout", help="Wall-clock deadline in seconds."),
    memory: str | None = typer.Option(None, "--memory", help="Address-space cap, e.g. 512M."),
    disk: str | None = typer.Option(
        None, "--disk", help="Cap on what CMD adds to its writable places, e.g. 2G."
    ),
    isolation: str | None = typer.Option(None, "--isolation", help=_ISOLATION_HELP),
    cwd: Path | None = typer.Option(None, "--cwd", help="Working directory inside."),  # noqa: B008
) -> None:
    """Run CMD confined under a named policy and exit with its status (see exit codes)."""
    tier = _tier(isolation)
    if not 0 < timeout < math.inf:  # NaN fails the comparison too
        raise SandboxPolicyInvalid(f"--timeout must be a positive number of seconds, not {timeout}")
    confined = build_policy(
        policy,
        ro=[os.path.abspath(p) for p in ro],
        rw=[os.path.abspath(p) for p in rw],
        network=net,
        connect_ports=port,
        listen_port=listen,
        egress=[parse_egress(e) for e in egress],
    ).with_disk_cap(_size(disk, "--disk"))
    if tier is Tier.NONE:
        err_console.print(
            "[bold red]warning:[/] --isolation none: no namespaces, no seccomp, no Landlock; "
            "only rlimits, no_new_privs and a clean environment apply"
        )
    where = os.path.abspath(cwd) if cwd else None
    try:
        done = _run_job(
            command, confined, cwd=where, timeout=timeout, memory=_size(memory), tier=tier
        )
    except SandboxError as exc:
        _print_refusals(exc.egress)
        raise
    _print_refusals(done.egress)
    code = done.returncode if done.returncode >= 0 else 128 - done.returncode
    raise typer.Exit(code)


def _run_job(
    command: list[str],
    policy: Policy,
    *,
    cwd: str | None,
    timeout: float,
    memory: int | None,
    tier: Tier,
) -> CompletedRun:
    """Run on our real stdio, or through pipes when it is not real (an in-process runner)."""
    fds = _stdio_fds()
    if fds is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        return run_attached(
            command,
            policy,
            stdin_fd=fds[0],
            stdout_fd=fds[1],
            stderr_fd=fds[2],
            cwd=cwd,
            timeout=timeout,
            memory_bytes=memory,
            isolation=tier,
        )
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else b""
    done = run_command(
        command, policy, stdin=data, cwd=cwd, timeout=timeout, memory_bytes=memory, isolation=tier
    )
    sys.stdout.buffer.write(done.stdout)
    sys.stderr.buffer.write(done.stderr)
    return done


def _print_refusals(report: EgressReport | None) -> None:
    # After the job's own output; markup off, as an IPv6 destination looks like a rich tag.
    for refusal in report.refusals if report is not None else ():
        err_console.print(f"egress refused: {refusal}", markup=False)

"""The gateway under the built-in sandbox: the outer launch and the inner start, one place.

Outer (``launch_gateway``): split the environment into settings (passed as the inner's
environment) and secrets (handed over on an inherited pipe, never on disk or in the inner's
environ); build the ``gateway`` policy from the settings (state dir read-write, listen port,
upstream ports, the interpreter read-only); run the inner ``auto-review gateway`` confined.
Inner (``serve_inner``): read the handoff first, load settings from environ + secrets, serve
with the posture the sandbox read back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from auto_review import sandbox
from auto_review.cli._common import err_console
from auto_review.errors import StoreError
from auto_review.logs import configure_logging
from auto_review.settings import ENV_NAMES, GATEWAY_REQUIRED, Isolation, Settings, load_settings

if TYPE_CHECKING:
    from auto_review.gateway import PostureProvider

__all__ = ["launch_gateway", "serve_inner"]

_SECRET_NAMES = frozenset(
    field.alias
    for field in Settings.model_fields.values()
    if field.alias and field.annotation in (SecretStr, SecretStr | None)
)
_DEFAULT_PORTS = {"https": 443, "http": 80}
_TMP_NAME = "tmp"  # beneath the state dir: the inner's TMPDIR, where job directories go


def _port(url: str | None) -> int | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.port or _DEFAULT_PORTS.get(parts.scheme)


def _forge_origin(settings: Settings) -> tuple[tuple[str, int], ...]:
    """The one (host, port) clone jobs may reach: the forge's (clone URLs are built from it)."""
    parts = urlsplit(settings.forgejo_base_url or "")
    port = _port(settings.forgejo_base_url)
    if not parts.hostname or port is None:
        return ()
    return ((parts.hostname, port),)


def _prepare_state_dir(settings: Settings) -> Path:
    """The state dir, created 0700 if missing (its parents with the umask's modes). Root in the
    restricted tier: the gateway there is host uid 65534 (docs/adr/0010), so a state dir this
    start creates is given to that uid, and said so, and the parents it creates are 0755; an
    existing one is never re-owned (the sandbox refuses it, naming the fix, if that uid cannot
    use it)."""
    state = settings.resolved_state_dir()
    if state.is_dir():
        return state
    owner = sandbox.restricted_job_id() if settings.isolation is Isolation.RESTRICTED else None
    for parent in reversed([p for p in state.parents if not p.exists()]):
        parent.mkdir(exist_ok=True)
        if owner is not None:
            # That uid must reach the dir it is given; under a umask of 0077 (the systemd
            # unit's) the new parents would be root's 0700 and the start refused.
            parent.chmod(0o755)
    state.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(state, owner, owner)
        err_console.print(
            f"created the state directory {state} owned by uid {owner}: root's gateway runs as "
            "that uid in the restricted tier (docs/OPERATIONS.md)"
        )
    return state


def _policy(settings: Settings, state: Path) -> sandbox.Policy:
    listen = int(settings.gateway_bind.rsplit(":", 1)[1])
    urls = (
        settings.forgejo_base_url,
        settings.llm_base_url,
        settings.llm_cheap_base_url,
        settings.llm_embedding_base_url,
    )
    upstream = sorted({p for p in (_port(u) for u in urls) if p is not None})
    extra = [str(settings.price_table_path)] if settings.price_table_path else []
    return sandbox.gateway_policy(
        str(state),
        listen_port=listen,
        upstream_ports=upstream,
        ro=[*sandbox.interpreter_paths(), *extra],
    )


def _inner_argv() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, "gateway"]
    return [sys.executable, "-I", "-m", "auto_review", "gateway"]


def launch_gateway(settings: Settings, environ: Mapping[str, str]) -> int:
    """Run the gateway confined at the operator's tier; return the exit code for the CLI."""
    env = {k: v for k, v in environ.items() if k in ENV_NAMES and k not in _SECRET_NAMES}
    state = _prepare_state_dir(settings)
    env["AR_STATE_DIR"] = str(state)
    env.update(sandbox.frozen_env())  # a one-file build re-executes itself as the inner
    # Job directories must be visible to the job server on the host, so temporary files go
    # beneath the state dir rather than the gateway's private /tmp (created by the inner
    # process, so that it owns it whichever uid the tier gives it).
    env["TMPDIR"] = str(state / _TMP_NAME)
    secrets = {k: v for k, v in environ.items() if k in _SECRET_NAMES and v.strip()}
    result = sandbox.launch(
        _inner_argv(),
        _policy(settings, state),
        secrets=secrets,
        env=env,
        isolation=sandbox.Tier(settings.isolation.value),
        job_server=True,
        job_egress=_forge_origin(settings),
        # closes: a subverted gateway running a job for as long as poll can wait (F59)
        job_deadline=settings.job_deadline_secs,
    )
    err_console.print(f"gateway {result.cause}")
    return result.returncode if result.returncode >= 0 else 128 - result.returncode


def _require_tmp(tmp: Path, owner: int | None) -> None:
    """Create the inner's TMPDIR if missing; refuse at start, naming the fix, one this process
    cannot write (left by a start under another uid), rather than fail each review later.
    ``owner``: the gateway's host uid where no user namespace maps it (restricted tier)."""
    try:
        tmp.mkdir(mode=0o700, exist_ok=True)
        usable = os.access(tmp, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    if not usable:
        who = "the user that starts the gateway" if owner is None else f"uid {owner}"
        raise StoreError(
            f"{tmp}: the gateway cannot write it; the state directory and everything in it "
            f"must belong to {who}, the gateway's identity on the host (chown -R "
            f"{'USER' if owner is None else owner} {tmp.parent}; see docs/OPERATIONS.md)"
        )


def serve_inner(environ: Mapping[str, str], serve: Callable[..., None]) -> None:
    """Inside the sandbox: take the handoff, load settings, serve with the read-back posture."""
    from auto_review.gateway import IsolationReport  # noqa: PLC0415 - see cli/gateway.py

    handoff = sandbox.read_handoff()
    loaded = load_settings({**environ, **handoff.secrets}, require=GATEWAY_REQUIRED)
    for warning in loaded.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    settings = loaded.settings
    configure_logging(
        secrets=settings.secret_values(), level=settings.log_level, fmt=settings.log_format
    )
    restricted = handoff.posture.tier_effective == str(sandbox.Tier.RESTRICTED)
    owner = handoff.posture.read_back.get("job_host_uid") if restricted else None
    _require_tmp(settings.resolved_state_dir() / _TMP_NAME, owner)
    report = IsolationReport.from_posture(handoff.posture)
    provider: PostureProvider = lambda: report  # noqa: E731 - a constant provider
    serve(settings, posture=provider)

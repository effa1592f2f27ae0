"""The gateway under the built-in sandbox: the outer launch and the inner start, one place.

Outer (``launch_gateway``): split the environment into settings (passed as the inner's
environment) and secrets (handed over on an inherited pipe, never on disk or in the inner's
environ); build the ``gateway`` policy from the settings (state dir read-write, listen port,
upstream ports, the interpreter read-only); run the inner ``auto-review gateway`` confined.
Inner (``serve_inner``): read the handoff first, load settings from environ + secrets, serve
with the posture the sandbox read back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr

from auto_review import sandbox
from auto_review.cli._common import err_console
from auto_review.gateway import IsolationReport, PostureProvider
from auto_review.logs import configure_logging
from auto_review.settings import ENV_NAMES, GATEWAY_REQUIRED, Settings, load_settings

__all__ = ["launch_gateway", "serve_inner"]

_SECRET_NAMES = frozenset(
    field.alias
    for field in Settings.model_fields.values()
    if field.alias and field.annotation in (SecretStr, SecretStr | None)
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


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


def _policy(settings: Settings) -> sandbox.Policy:
    state = settings.resolved_state_dir()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    state = settings.resolved_state_dir()
    env["AR_STATE_DIR"] = str(state)
    env.update(sandbox.frozen_env())  # a one-file build re-executes itself as the inner
    # Job directories must be visible to the job server on the host, so temporary files go
    # beneath the state dir rather than the gateway's private /tmp.
    (state / "tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
    env["TMPDIR"] = str(state / "tmp")
    secrets = {k: v for k, v in environ.items() if k in _SECRET_NAMES and v.strip()}
    result = sandbox.launch(
        _inner_argv(),
        _policy(settings),
        secrets=secrets,
        env=env,
        isolation=sandbox.Tier(settings.isolation.value),
        job_server=True,
        job_egress=_forge_origin(settings),
    )
    err_console.print(f"gateway {result.cause}")
    return result.returncode if result.returncode >= 0 else 128 - result.returncode


def serve_inner(environ: Mapping[str, str], serve: Callable[..., None]) -> None:
    """Inside the sandbox: take the handoff, load settings, serve with the read-back posture."""
    handoff = sandbox.read_handoff()
    loaded = load_settings({**environ, **handoff.secrets}, require=GATEWAY_REQUIRED)
    for warning in loaded.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    settings = loaded.settings
    configure_logging(
        secrets=settings.secret_values(), level=settings.log_level, fmt=settings.log_format
    )
    report = IsolationReport.from_posture(handoff.posture)
    provider: PostureProvider = lambda: report  # noqa: E731 - a constant provider
    serve(settings, posture=provider)

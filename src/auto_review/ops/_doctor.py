"""``ops doctor``: probe, for real and with bounded timeouts, what the gateway needs.

Each check is a ``Check`` (PASS, WARN or FAIL, a detail, and the fix for anything not PASS):
forge reachable and token valid, each model tier reachable with its model listed, git >= 2.30,
secrets strong enough (and ``AR_OPERATOR_TOKEN`` set where the bind is not loopback), state
directory writable and database migrated, and the isolation tier this host can give, measured
by the sandbox probe and by confining ``true`` at that tier as ``sandbox check`` does (its
controls, each with the sandbox's reason). No check prints a secret.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from enum import StrEnum

import httpx

from auto_review.errors import AutoReviewError, HostAuthError, HostError
from auto_review.hosts import RetryPolicy, forgejo_host
from auto_review.llm import LLMClient, readiness
from auto_review.sandbox import (
    Control,
    HostSupport,
    KernelFeatureMissing,
    SandboxError,
    Tier,
    probe_host,
    require_tier,
    run_command,
    run_policy,
)
from auto_review.settings import Isolation, Settings
from auto_review.store import DATABASE_NAME, Store, known_migrations

__all__ = ["MIN_GIT_VERSION", "Check", "CheckState", "DoctorReport", "run_doctor"]

MIN_GIT_VERSION = (2, 30)
_MIN_DISTINCT_CHARS = 8
_AUTH_INIT = "auto-review auth init --forge-url URL --username BOT"


class CheckState(StrEnum):
    PASS = "PASS"  # noqa: S105 - a check state, not a password
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    state: CheckState
    detail: str
    fix: str = ""
    # The isolation check's controls as a job at the tier reads them back (``sandbox check``).
    controls: tuple[Control, ...] = ()


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.state is not CheckState.FAIL for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _pass(name: str, detail: str) -> Check:
    return Check(name, CheckState.PASS, detail)


def _warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, CheckState.WARN, detail, fix)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, CheckState.FAIL, detail, fix)


async def _forge(settings: Settings, limit_secs: float) -> list[Check]:
    if settings.forgejo_base_url is None:
        return [_fail("forge", "FORGEJO_BASE_URL is not set", "set FORGEJO_BASE_URL")]
    if settings.forgejo_token is None:
        return [_fail("forge token", "AR_FORGEJO_TOKEN is not set", f"run `{_AUTH_INIT}`")]
    url = settings.forgejo_base_url
    host = forgejo_host(
        settings.forge(), retry=RetryPolicy(max_attempts=1), timeout=httpx.Timeout(limit_secs)
    )
    refused = _fail("forge token", "the forge refused AR_FORGEJO_TOKEN",
                    f"mint a new token: `{_AUTH_INIT}`")  # fmt: skip
    try:
        async with host, asyncio.timeout(limit_secs * 3):
            try:
                version = await host.version()
            except HostAuthError:  # it answered, so it is reachable; the token is the problem
                return [_pass("forge", f"{url} answers"), refused]
            reach = _pass("forge", f"{url} answers (version {version})")
            try:
                login = await host.current_user()
            except HostAuthError:
                return [reach, refused]
    except (HostError, TimeoutError) as exc:
        detail = exc.message if isinstance(exc, HostError) else f"no answer within {limit_secs:g} s"
        return [_fail("forge", f"{url}: {detail}", "check FORGEJO_BASE_URL and the network")]
    # Forgejo/Gitea do not report a token's scopes on /user: a missing scope shows as a 403.
    detail = f"valid for @{login}; scopes are not reported by the forge (auth init grants them)"
    if login.lower() != settings.bot_login.lower():
        fix = f"set AR_BOT_LOGIN={login}, or use a token of @{settings.bot_login}"
        return [
            reach,
            _warn(
                "forge token",
                f"token belongs to @{login}, not @{settings.bot_login} (AR_BOT_LOGIN)",
                fix,
            ),
        ]
    return [reach, _pass("forge token", detail)]


async def _models(settings: Settings, limit_secs: float) -> list[Check]:
    if settings.llm_base_url is None:
        return [
            _fail(
                "model",
                "LLM_BASE_URL is not set",
                "set LLM_BASE_URL to an OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1",
            )
        ]
    async with httpx.AsyncClient(timeout=httpx.Timeout(limit_secs), trust_env=False) as http:
        try:
            async with asyncio.timeout(limit_secs * 4):
                result = await readiness(LLMClient(settings.llm(), http), timeout_secs=limit_secs)
        except TimeoutError:
            return [
                _fail(
                    "model",
                    f"{settings.llm_base_url}: no answer in time",
                    "check LLM_BASE_URL and the network",
                )
            ]
    checks = []
    for t in result.tiers:
        name = f"model {t.tier.value}"
        if t.reachable and t.model_present:
            checks.append(_pass(name, f"{t.model} is served by {t.base_url}"))
        elif t.reachable:
            checks.append(
                _fail(
                    name,
                    t.detail,
                    f"pull or serve {t.model}, or change the model variable of this tier",
                )
            )
        else:
            checks.append(
                _fail(
                    name,
                    f"{t.base_url}: {t.detail}",
                    "check the endpoint URL, its API key and the network",
                )
            )
    return checks


def _git(timeout: float) -> Check:
    git = shutil.which("git", path="/usr/local/bin:/usr/bin:/bin")
    if git is None:
        return _fail("git", "git is not installed", "install git >= 2.30 (e.g. apt install git)")
    try:
        out = subprocess.run(
            [git, "--version"], capture_output=True, timeout=timeout, check=True, env={}
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return _fail("git", f"{git} --version failed", "reinstall git >= 2.30")
    words = out.split()
    numbers = words[2].split(".") if len(words) > 2 else []
    try:
        version = (int(numbers[0]), int(numbers[1]))
    except (IndexError, ValueError):
        return _warn("git", f"cannot read the version in {out.strip()!r}", "use git >= 2.30")
    if version < MIN_GIT_VERSION:
        return _fail("git", f"git {words[2]} is older than 2.30", "upgrade git to 2.30 or later")
    return _pass("git", f"git {words[2]} at {git}")


def _secrets(settings: Settings) -> list[Check]:
    checks = []
    secret = settings.webhook_secret
    if secret is None:
        checks.append(
            _fail(
                "webhook secret",
                "WEBHOOK_SECRET is not set",
                "set WEBHOOK_SECRET to 32+ random bytes, the same as in the forge's hook",
            )
        )
    elif len(set(secret.get_secret_value())) < _MIN_DISTINCT_CHARS:
        checks.append(
            _warn(
                "webhook secret",
                "WEBHOOK_SECRET repeats too few characters",
                "use random bytes, e.g. `head -c 32 /dev/urandom | base64`",
            )
        )
    else:
        checks.append(_pass("webhook secret", "set, 32+ bytes"))
    if settings.ci_review_token is None:
        if settings.review_mode == "ci":
            checks.append(
                _warn(
                    "ci token",
                    "AR_REVIEW_MODE=ci but AR_CI_REVIEW_TOKEN is unset: "
                    "only chat can start reviews",
                    "set AR_CI_REVIEW_TOKEN (32+ bytes) for your CI, or AR_REVIEW_MODE=direct",
                )
            )
    elif len(set(settings.ci_review_token.get_secret_value())) < _MIN_DISTINCT_CHARS:
        checks.append(
            _warn(
                "ci token",
                "AR_CI_REVIEW_TOKEN repeats too few characters",
                "use random bytes for AR_CI_REVIEW_TOKEN",
            )
        )
    else:
        checks.append(_pass("ci token", "set, 32+ bytes"))
    return [*checks, *_operator_token(settings)]


def _operator_token(settings: Settings) -> list[Check]:
    token = settings.operator_token
    if token is None:
        if settings.binds_loopback_only:
            return []
        return [
            _warn(
                "operator token",
                f"AR_GATEWAY_BIND={settings.gateway_bind} is not loopback and "
                "AR_OPERATOR_TOKEN is unset: /info and /metrics answer anyone who reaches it",
                "set AR_OPERATOR_TOKEN (32+ random bytes) and give it to your Prometheus scrape",
            )
        ]
    if len(set(token.get_secret_value())) < _MIN_DISTINCT_CHARS:
        return [
            _warn(
                "operator token",
                "AR_OPERATOR_TOKEN repeats too few characters",
                "use random bytes for AR_OPERATOR_TOKEN",
            )
        ]
    return [_pass("operator token", "set, 32+ bytes")]


def _state(settings: Settings) -> Check:
    """Read-only: the doctor may run as another user than the gateway (root, say), so it
    creates, migrates and writes nothing there (Store.inspect)."""
    where = settings.resolved_state_dir()
    fix = f"create {where} writable by the service user, or set AR_STATE_DIR"
    if not where.exists():
        parent = next(p for p in where.parents if p.exists())
        if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
            return _fail("state dir", f"{where} does not exist and {parent} cannot hold it", fix)
        return _pass("state dir", f"{where} does not exist yet; the gateway creates it at start")
    if not where.is_dir() or not os.access(where, os.W_OK | os.X_OK):
        return _fail("state dir", f"{where} is not a directory this user can write", fix)
    try:
        version = Store.inspect(where / DATABASE_NAME)
    except AutoReviewError as exc:
        return _fail(
            "state dir",
            f"the database in {where} cannot be opened: {exc.message}",
            "restore it from a backup, or move it away to start afresh",
        )
    newest = known_migrations()[-1].version
    if version is None:
        return _pass("state dir", f"{where} is writable; no database yet (made at first start)")
    if version > newest:
        return _fail(
            "state dir",
            f"the database in {where} is at schema {version}, newer than this build ({newest})",
            "run the auto-review build that wrote it, or restore a backup",
        )
    pending = f", migrated to {newest} at the next start" if version < newest else ""
    return _pass("state dir", f"{where} is writable; database at schema {version}{pending}")


def _confine_true(tier: Tier) -> tuple[Control, ...]:
    """Every control of ``true`` confined at ``tier`` under the run policy, as read back."""
    return run_command(["true"], run_policy(), timeout=60, isolation=tier).posture.controls


def _isolation(
    settings: Settings,
    probe: Callable[[], HostSupport],
    confine: Callable[[Tier], tuple[Control, ...]],
) -> Check:
    support = probe()
    best = str(support.best_tier)
    wanted = Tier(settings.isolation.value)
    if settings.isolation is Isolation.NONE:
        return _warn(
            "isolation",
            f"AR_ISOLATION=none: the gateway will run without the sandbox "
            f"(this host can give {best})",
            f"set AR_ISOLATION={best}",
        )
    try:
        require_tier(wanted, support)
    except KernelFeatureMissing as exc:
        return _fail("isolation", f"tier {wanted} cannot hold: {exc.message}", exc.fix)
    try:
        controls = confine(wanted)
    except SandboxError as exc:
        return _fail(
            "isolation",
            f"tier {wanted} holds on this host (best: {best}), but confining a job failed: "
            f"{exc.message}",
            f"run `auto-review sandbox check --isolation {wanted}`; see docs/SANDBOX.md",
        )
    on = sum(c.state == "on" for c in controls)
    detail = (
        f"tier {wanted} holds on this host (best: {best}); a job confined at it reads back "
        f"{on} of {len(controls)} controls on"
    )
    return Check("isolation", CheckState.PASS, detail, controls=controls)


async def run_doctor(
    settings: Settings,
    *,
    timeout_secs: float = 5.0,
    probe: Callable[[], HostSupport] = probe_host,
    confine: Callable[[Tier], tuple[Control, ...]] = _confine_true,
) -> DoctorReport:
    """Every check, in a fixed order; network checks are bounded by ``timeout_secs`` each."""
    network: list[Awaitable[list[Check]]] = [
        _forge(settings, timeout_secs),
        _models(settings, timeout_secs),
    ]
    forge, models = await asyncio.gather(*network)
    local = [
        _git(timeout_secs),
        *_secrets(settings),
        _state(settings),
        _isolation(settings, probe, confine),  # forks children: not from a worker thread
    ]
    return DoctorReport(tuple([*forge, *models, *local]))

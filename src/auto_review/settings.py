"""Every environment variable auto-review reads, typed and validated in one pass.

``load_settings(environ)`` is the only place the process environment is interpreted. It returns
a frozen ``Settings`` or raises ``ConfigError`` listing every problem at once. Rules:

- a blank value means unset;
- a missing required variable is named, never echoed;
- ``WEBHOOK_SECRET``, ``AR_CI_REVIEW_TOKEN`` and ``AR_OPERATOR_TOKEN`` shorter than 32 bytes
  are rejected, and ``AR_OPERATOR_TOKEN`` may not repeat either of the other two;
- URLs must be absolute http(s) URLs without credentials, query or fragment;
- unknown ``AR_*`` variables produce a warning naming the closest known one.

Components take the slice they need (``settings.forge()``, ``settings.llm()``), not the whole.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from auto_review.errors import ConfigError

__all__ = [
    "FORGE_REQUIRED",
    "GATEWAY_REQUIRED",
    "LLM_REQUIRED",
    "MAX_ANALYSIS_SECS",
    "ForgeConfig",
    "Isolation",
    "LLMConfig",
    "LLMTierConfig",
    "LoadedSettings",
    "Settings",
    "default_state_dir",
    "load_settings",
    "unknown_variable_warnings",
]

MIN_SECRET_BYTES = 32
# Upper bounds of the time settings, so that a typo (an extra digit, "inf") is a startup error
# rather than a deadline nobody will wait for. Each is far above any sensible value.
_MINUTE, _HOUR, _DAY = 60, 3600, 86400


class Isolation(StrEnum):
    """The isolation tier the operator asks for (see docs/SANDBOX.md)."""

    FULL = "full"
    RESTRICTED = "restricted"
    NONE = "none"


# The longest deadline the review gives one sandboxed analysis task (review/_isolation.py).
MAX_ANALYSIS_SECS = 120.0


def default_state_dir(environ: Mapping[str, str], *, is_root: bool) -> Path:
    """``/var/lib/auto-review`` for root, else ``$XDG_STATE_HOME/auto-review`` (XDG default)."""
    if is_root:
        return Path("/var/lib/auto-review")
    xdg = environ.get("XDG_STATE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "auto-review"
    home = environ.get("HOME", "").strip() or str(Path.home())
    return Path(home) / ".local" / "state" / "auto-review"


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use the token variable instead")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    return value.rstrip("/")


def _check_strong(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes long")
    return value


class Settings(BaseSettings):
    """The effective service configuration. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=False)

    # -- forge --------------------------------------------------------------------------------
    forgejo_base_url: str | None = Field(
        None, alias="FORGEJO_BASE_URL", description="Base URL of the Forgejo/Gitea instance."
    )
    forgejo_token: SecretStr | None = Field(
        None, alias="AR_FORGEJO_TOKEN", description="Access token of the bot account."
    )
    bot_login: str = Field(
        "auto-review", alias="AR_BOT_LOGIN", description="Login of the bot account on the forge."
    )
    bot_name: str | None = Field(
        None, alias="AR_BOT_NAME", description="Name users mention (@name); default: the login."
    )
    # -- intake -------------------------------------------------------------------------------
    webhook_secret: SecretStr | None = Field(
        None,
        alias="WEBHOOK_SECRET",
        description="HMAC-SHA256 key shared with the forge's webhooks.",
    )
    ci_review_token: SecretStr | None = Field(
        None,
        alias="AR_CI_REVIEW_TOKEN",
        description="Bearer token for POST /reviews/ci; unset disables it.",
    )
    operator_token: SecretStr | None = Field(
        None,
        alias="AR_OPERATOR_TOKEN",
        description="Bearer token GET /info and /metrics require; unset leaves them open.",
    )
    gateway_bind: str = Field(
        "127.0.0.1:8080", alias="AR_GATEWAY_BIND", description="host:port the gateway listens on."
    )
    max_body_bytes: int = Field(
        5 * 1024 * 1024,
        ge=1024,
        alias="AR_MAX_BODY_BYTES",
        description="Largest accepted request body.",
    )
    max_connections: int = Field(
        256, ge=1, alias="AR_MAX_CONNECTIONS", description="Concurrent HTTP connections before 503."
    )
    header_timeout_secs: float = Field(
        10.0,
        gt=0,
        le=5 * _MINUTE,  # headers are a few KiB: longer only keeps slow-loris clients
        alias="AR_HEADER_TIMEOUT_SECS",
        description="Time a client has to send request headers (at most 300).",
    )
    body_timeout_secs: float = Field(
        30.0,
        gt=0,
        le=10 * _MINUTE,  # 5 MiB (the default body cap) at under 10 KiB/s
        alias="AR_BODY_TIMEOUT_SECS",
        description="Time a client has to send a whole request body (at most 600).",
    )
    webhook_rate_per_sec: float = Field(
        20.0,
        gt=0,
        alias="AR_WEBHOOK_RATE_PER_SEC",
        description="Global webhook refill rate (tokens/s).",
    )
    webhook_burst: int = Field(
        40, ge=1, alias="AR_WEBHOOK_BURST", description="Global webhook bucket size."
    )
    webhook_client_rate_per_sec: float = Field(
        5.0,
        gt=0,
        alias="AR_WEBHOOK_CLIENT_RATE_PER_SEC",
        description="Per-client webhook refill rate.",
    )
    webhook_client_burst: int = Field(
        20, ge=1, alias="AR_WEBHOOK_CLIENT_BURST", description="Per-client webhook bucket size."
    )
    dedup_ttl_secs: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=30 * _DAY,  # forges redeliver within hours; every id is a row until then
        alias="AR_DEDUP_TTL_SECS",
        description="How long delivery ids are remembered (at most 30 days).",
    )
    readiness_ttl_secs: float = Field(
        10.0,
        ge=0,
        le=5 * _MINUTE,  # a readiness answer older than that no longer says much
        alias="AR_READINESS_TTL_SECS",
        description="How long a /readyz probe result is cached (at most 300).",
    )
    poll_interval_secs: int = Field(
        60,
        ge=0,
        le=_DAY,  # a command answered days late is not an answer
        alias="AR_POLL_INTERVAL_SECS",
        description="Chat poller period; 0 disables it (at most a day).",
    )
    review_mode: Literal["ci", "direct"] = Field(
        "ci",
        alias="AR_REVIEW_MODE",
        description="ci: reviews start from /reviews/ci; direct: from PR events.",
    )
    # -- jobs ---------------------------------------------------------------------------------
    review_concurrency: int = Field(
        2, ge=1, le=64, alias="AR_REVIEW_CONCURRENCY", description="Reviews run at the same time."
    )
    review_timeout_secs: int = Field(
        900,
        ge=30,
        # Hours of a slow local model fit; a review held longer keeps one of the
        # AR_REVIEW_CONCURRENCY workers from every other PR.
        le=6 * _HOUR,
        alias="AR_REVIEW_TIMEOUT_SECS",
        description="Deadline of one review job (at most 6 h).",
    )
    job_retention_days: float = Field(
        30.0,
        ge=1,
        le=3650,
        alias="AR_JOB_RETENTION_DAYS",
        description="Days a finished job stays in the queue's table (jobs list, jobs retry).",
    )
    job_max_attempts: int = Field(
        3,
        ge=1,
        le=10,
        alias="AR_JOB_MAX_ATTEMPTS",
        description="Runs a job gets (retries and restarts) before it fails.",
    )
    shutdown_grace_secs: int = Field(
        30,
        ge=0,
        le=_HOUR,  # unfinished jobs are re-queued anyway; the service manager waits this long
        alias="AR_SHUTDOWN_GRACE_SECS",
        description="Time running jobs get after SIGTERM (at most 1 h).",
    )
    # -- model --------------------------------------------------------------------------------
    llm_base_url: str | None = Field(
        None, alias="LLM_BASE_URL", description="OpenAI-compatible endpoint of the reasoning tier."
    )
    llm_api_key: SecretStr | None = Field(None, alias="LLM_API_KEY", description="API key, if any.")
    llm_reasoning_model: str = Field(
        "qwen2.5-coder:32b", alias="LLM_REASONING_MODEL", description="Model that writes reviews."
    )
    llm_cheap_model: str | None = Field(
        None,
        alias="LLM_CHEAP_MODEL",
        description="Model for verification and chat; unset disables the tier.",
    )
    llm_cheap_base_url: str | None = Field(
        None,
        alias="LLM_CHEAP_BASE_URL",
        description="Endpoint of the cheap tier (default LLM_BASE_URL).",
    )
    llm_cheap_api_key: SecretStr | None = Field(
        None,
        alias="LLM_CHEAP_API_KEY",
        description="API key of the cheap tier (default LLM_API_KEY).",
    )
    llm_embedding_model: str | None = Field(
        None, alias="LLM_EMBEDDING_MODEL", description="Embedding model; unset disables retrieval."
    )
    llm_embedding_base_url: str | None = Field(
        None, alias="LLM_EMBEDDING_BASE_URL", description="Endpoint of the embedding tier."
    )
    llm_embedding_api_key: SecretStr | None = Field(
        None, alias="LLM_EMBEDDING_API_KEY", description="API key of the embedding tier."
    )
    llm_context_tokens: int = Field(
        32768,
        ge=2048,
        alias="AR_LLM_CONTEXT_TOKENS",
        description="Context window of the reasoning model.",
    )
    llm_max_output_tokens: int = Field(
        4096, ge=256, alias="AR_LLM_MAX_OUTPUT_TOKENS", description="max_tokens of each model call."
    )
    llm_timeout_secs: float = Field(
        120.0,
        gt=0,
        le=_HOUR,  # a review (6 h at most) makes several calls, each may be retried
        alias="AR_LLM_TIMEOUT_SECS",
        description="Deadline of one model call attempt, the whole answer included (at most 1 h).",
    )
    max_llm_calls: int = Field(
        6,
        ge=1,
        le=64,
        alias="AR_MAX_LLM_CALLS",
        description="Review calls one PR may be split into.",
    )
    max_model_requests: int = Field(
        80,
        ge=4,
        le=10_000,
        alias="AR_MAX_MODEL_REQUESTS",
        description=(
            "Chat requests one review may send to the model: review calls, repairs, "
            "verifier turns and retries together."
        ),
    )
    embed_num_ctx: int | None = Field(
        None, ge=1, alias="AR_EMBED_NUM_CTX", description="Ollama options.num_ctx for embeddings."
    )
    embed_input_cap_bytes: int = Field(
        6144, ge=256, alias="AR_EMBED_INPUT_CAP_BYTES", description="Largest text embedded at once."
    )
    embed_batch_size: int = Field(
        32, ge=1, alias="AR_EMBED_BATCH_SIZE", description="Texts per embedding request."
    )
    price_table_path: Path | None = Field(
        None, alias="AR_PRICE_TABLE_PATH", description="JSON price table (USD per 1M tokens)."
    )
    review_cost_footer: bool = Field(
        True,
        alias="AR_REVIEW_COST_FOOTER",
        description="Show model, tokens and cost under reviews.",
    )
    # -- review -------------------------------------------------------------------------------
    severity_floor: Literal["note", "warning", "error"] = Field(
        "warning", alias="AR_SEVERITY_FLOOR", description="Findings below this are not posted."
    )
    agentic_verifier: bool = Field(
        False, alias="AR_AGENTIC_VERIFIER", description="Let the verifier read repository files."
    )
    clone_timeout_secs: int = Field(
        300,
        ge=10,
        # Also the job server's ceiling on a job's deadline (job_deadline_secs, below),
        # which the sandbox caps at an hour (MAX_JOB_DEADLINE_SECS).
        le=_HOUR,
        alias="AR_CLONE_TIMEOUT_SECS",
        description="Deadline of one clone, every git step together (at most 1 h).",
    )
    clone_max_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=1024 * 1024,
        alias="AR_CLONE_MAX_BYTES",
        description="Largest workspace.",
    )
    chat_user_rate_per_hour: int = Field(
        20,
        ge=1,
        alias="AR_CHAT_USER_RATE_PER_HOUR",
        description="Model-spending commands (and review requests) per user per hour.",
    )
    chat_pr_rate_per_hour: int = Field(
        60,
        ge=1,
        alias="AR_CHAT_PR_RATE_PER_HOUR",
        description="Model-spending commands (and review requests) per PR per hour.",
    )
    chat_free_user_rate_per_hour: int = Field(
        30,
        ge=1,
        alias="AR_CHAT_FREE_USER_RATE_PER_HOUR",
        description="help/config/learnings commands (no model use) per user per hour.",
    )
    chat_free_pr_rate_per_hour: int = Field(
        60,
        ge=1,
        alias="AR_CHAT_FREE_PR_RATE_PER_HOUR",
        description="help/config/learnings commands (no model use) per PR per hour.",
    )
    chat_ignore_logins: str = Field(
        "",
        alias="AR_CHAT_IGNORE_LOGINS",
        description="Comma-separated bot logins chat never answers (plus *[bot], *-bot).",
    )
    # -- process ------------------------------------------------------------------------------
    state_dir: Path | None = Field(
        None,
        alias="AR_STATE_DIR",
        description="Directory of the SQLite state (default: XDG/var/lib).",
    )
    isolation: Isolation = Field(
        Isolation.FULL,
        alias="AR_ISOLATION",
        description="Isolation tier: full, restricted or none.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", alias="AR_LOG_LEVEL", description="Lowest log level written."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", alias="AR_LOG_FORMAT", description="auto: JSON unless stdout is a terminal."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what load_settings hands in: the environment is read in exactly one place.
        return (init_settings,)

    _urls = field_validator(
        "forgejo_base_url", "llm_base_url", "llm_cheap_base_url", "llm_embedding_base_url"
    )(_check_url)
    _strong = field_validator("webhook_secret", "ci_review_token", "operator_token")(_check_strong)

    @field_validator("operator_token")
    @classmethod
    def _not_reused(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # closes: the scraper's credential (a Prometheus config, a monitoring host) doubling as
        # one that signs webhooks, queues CI reviews or acts as the bot on the forge. Fields
        # validate in order: all three are in.
        others = [info.data.get(k) for k in ("forgejo_token", "webhook_secret", "ci_review_token")]
        if value is not None and any(
            o is not None and o.get_secret_value() == value.get_secret_value() for o in others
        ):
            raise ValueError(
                "must differ from AR_FORGEJO_TOKEN, WEBHOOK_SECRET and AR_CI_REVIEW_TOKEN"
            )
        return value

    @field_validator("bot_login", "llm_reasoning_model")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("gateway_bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
        return value

    @field_validator("state_dir", "price_table_path")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    # -- derived views --------------------------------------------------------------------------

    @property
    def mention_name(self) -> str:
        """The name users write after ``@``."""
        return self.bot_name or self.bot_login

    @property
    def bind_host(self) -> str:
        return self.gateway_bind.rpartition(":")[0].strip("[]")

    @property
    def bind_port(self) -> int:
        return int(self.gateway_bind.rpartition(":")[2])

    @property
    def binds_loopback_only(self) -> bool:
        """Whether only this host can reach the listener (a host name other than localhost
        may resolve anywhere, so it counts as reachable from outside)."""
        host = self.bind_host
        if host.lower() == "localhost":
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return (mapped or address).is_loopback

    @property
    def job_deadline_secs(self) -> float:
        """The longest deadline the gateway gives one sandboxed job (the job server's ceiling):
        a git step gets what is left of the clone's deadline, an analysis task at most
        ``MAX_ANALYSIS_SECS``."""
        return float(max(self.clone_timeout_secs, MAX_ANALYSIS_SECS))

    def resolved_state_dir(self, environ: Mapping[str, str] | None = None) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        env = os.environ if environ is None else environ
        return default_state_dir(env, is_root=os.geteuid() == 0)

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret's value, for log redaction. Never log this."""
        values = []
        for name in _SECRET_FIELDS:
            secret = getattr(self, name)
            if secret is not None and secret.get_secret_value():
                values.append(secret.get_secret_value())
        return tuple(values)

    def forge(self) -> ForgeConfig:
        """The forge slice; ``ConfigError`` if it is not configured."""
        missing = [
            env
            for env, value in (
                ("FORGEJO_BASE_URL", self.forgejo_base_url),
                ("AR_FORGEJO_TOKEN", self.forgejo_token),
            )
            if value is None
        ]
        if missing:
            raise ConfigError(
                f"not set: {', '.join(missing)}", tuple(f"{m} is required" for m in missing)
            )
        return ForgeConfig(
            base_url=str(self.forgejo_base_url),
            token=cast(SecretStr, self.forgejo_token),
            bot_login=self.bot_login,
        )

    def llm(self) -> LLMConfig:
        """The model slice; ``ConfigError`` if no reasoning endpoint is configured."""
        if self.llm_base_url is None:
            raise ConfigError("not set: LLM_BASE_URL", ("LLM_BASE_URL is required",))
        reasoning = LLMTierConfig(
            "reasoning", self.llm_base_url, self.llm_api_key, self.llm_reasoning_model
        )
        cheap = None
        if self.llm_cheap_model:
            cheap = LLMTierConfig(
                "cheap",
                self.llm_cheap_base_url or self.llm_base_url,
                self.llm_cheap_api_key or self.llm_api_key,
                self.llm_cheap_model,
            )
        embedding = None
        if self.llm_embedding_model:
            embedding = LLMTierConfig(
                "embedding",
                self.llm_embedding_base_url or self.llm_base_url,
                self.llm_embedding_api_key or self.llm_api_key,
                self.llm_embedding_model,
            )
        return LLMConfig(
            reasoning=reasoning,
            cheap=cheap,
            embedding=embedding,
            context_tokens=self.llm_context_tokens,
            max_output_tokens=self.llm_max_output_tokens,
            timeout_secs=self.llm_timeout_secs,
            price_table_path=self.price_table_path,
            embed_batch_size=self.embed_batch_size,
            embed_input_cap_bytes=self.embed_input_cap_bytes,
            embed_num_ctx=self.embed_num_ctx,
        )

    def public_view(self) -> dict[str, Any]:
        """Every setting by environment name with secrets masked: safe to print."""
        view: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********"
            elif isinstance(value, Enum):
                value = value.value
            elif isinstance(value, Path):
                value = str(value)
            view[field.alias or name] = value
        return view


_SECRET_FIELDS = tuple(
    name
    for name, field in Settings.model_fields.items()
    if field.annotation in (SecretStr, SecretStr | None)
)

ENV_NAMES: frozenset[str] = frozenset(
    field.alias for field in Settings.model_fields.values() if field.alias
)

# What each kind of command cannot run without.
FORGE_REQUIRED = frozenset({"FORGEJO_BASE_URL", "AR_FORGEJO_TOKEN"})
LLM_REQUIRED = frozenset({"LLM_BASE_URL"})
GATEWAY_REQUIRED = FORGE_REQUIRED | LLM_REQUIRED | {"WEBHOOK_SECRET"}

# Variables auto-review itself sets or reads outside Settings (never warned about).
_INTERNAL_AR_VARS = frozenset({"AR_SANDBOX_INNER"})


@dataclass(frozen=True)
class ForgeConfig:
    base_url: str
    token: SecretStr
    bot_login: str


@dataclass(frozen=True)
class LLMTierConfig:
    tier: Literal["reasoning", "cheap", "embedding"]
    base_url: str
    api_key: SecretStr | None
    model: str


@dataclass(frozen=True)
class LLMConfig:
    reasoning: LLMTierConfig
    cheap: LLMTierConfig | None
    embedding: LLMTierConfig | None
    context_tokens: int
    max_output_tokens: int
    timeout_secs: float
    price_table_path: Path | None
    embed_batch_size: int = 32
    embed_input_cap_bytes: int = 6144
    embed_num_ctx: int | None = None


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus the warnings found while loading them."""

    settings: Settings
    warnings: tuple[str, ...]


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    require: frozenset[str] = frozenset(),
    overrides: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Validate the environment once; raise ``ConfigError`` listing every problem.

    ``overrides`` (variable name -> value, e.g. from command-line flags) win over the
    environment and are validated exactly like it.
    """
    env = dict(os.environ if environ is None else environ) | dict(overrides or {})
    present = {k: v.strip() for k, v in env.items() if k in ENV_NAMES and v.strip()}
    problems: list[str] = [
        f"{name} is required but not set" for name in sorted(require - present.keys())
    ]
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(present)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "?"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
    if problems:
        raise ConfigError(f"{len(problems)} configuration problem(s)", tuple(problems))
    return LoadedSettings(
        settings=cast(Settings, settings), warnings=unknown_variable_warnings(env)
    )


def unknown_variable_warnings(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """A warning for each ``AR_*`` variable auto-review does not know, naming the closest."""
    env = os.environ if env is None else env
    known = sorted(n for n in ENV_NAMES | _INTERNAL_AR_VARS)
    warnings = []
    for name in sorted(env):
        if name.startswith("AR_") and name not in ENV_NAMES and name not in _INTERNAL_AR_VARS:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"unknown variable {name} is ignored{hint}")
    return tuple(warnings)

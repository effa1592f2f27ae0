"""Structured logging: JSON for services, readable text on a terminal, secrets removed by value.

``configure_logging`` is called once by the CLI entry point. The redaction processor replaces
every occurrence of every configured secret value in every string of an event (message,
nested fields, rendered exception text) with ``[REDACTED]``; records of libraries that log
through the standard library pass the same processor. It matches values, not patterns,
so a token is caught wherever it ends up, even inside an upstream error body.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO, cast

import structlog
from structlog.typing import FilteringBoundLogger

__all__ = ["REDACTED", "SecretRedactor", "configure_logging", "get_logger", "redact_secrets"]

REDACTED = "[REDACTED]"

# Secrets shorter than this are not redacted by value: replacing every "a" would destroy logs,
# and settings already refuse such short secrets where strength matters.
_MIN_REDACTABLE = 6


class SecretRedactor:
    """A structlog processor that removes known secret values from an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        unique = {s for s in secrets if len(s) >= _MIN_REDACTABLE}
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, bytes):
            return self.scrub(value.decode("utf-8", "replace"))
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub(v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.scrub(str(value))

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event_dict
        return {key: self.scrub(value) for key, value in event_dict.items()}


_redactor = SecretRedactor()


def redact_secrets(text: str) -> str:
    """``text`` without any secret value this process was configured with (see below)."""
    return str(_redactor.scrub(text))


def configure_logging(
    *,
    secrets: Iterable[str] = (),
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
) -> SecretRedactor:
    """Set up structlog for this process and return the active redactor."""
    out = stream or sys.stderr
    _redactor.update(secrets)
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        # After exceptions are rendered to text, so their messages are scrubbed too.
        _redactor,
        renderer,
    ]
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(out, numeric_level, renderer)
    return _redactor


class _LibraryHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler this module installs (so a second configure replaces it, not others)."""


def _route_stdlib_logging(out: TextIO, level: int, renderer: Any) -> None:
    # Libraries (uvicorn, httpx) log through the standard library; their records pass the same
    # redactor and renderer, so a token in a logged URL or error body is caught there too.
    handler = _LibraryHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redactor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    # Replace only our own handler: other handlers (a test runner's capture) stay attached.
    for old in [h for h in root.handlers if isinstance(h, _LibraryHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger bound to ``component=name``.

    Lazy on purpose: modules create their loggers at import, before ``configure_logging`` ran;
    binding eagerly would freeze structlog's default processors into them (no redactor).
    """
    return cast(FilteringBoundLogger, structlog.get_logger(component=name))

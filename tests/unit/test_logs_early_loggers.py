"""Loggers created at import time (before ``configure_logging``) still redact secrets."""

from __future__ import annotations

import io
import json

import structlog

from auto_review.logs import configure_logging, get_logger

_EARLY = get_logger("early-module")  # as every module does at import


def test_logger_created_before_configuration_uses_the_redactor() -> None:
    out = io.StringIO()
    try:
        configure_logging(secrets=["tok-" + "x" * 20], fmt="json", stream=out)
        _EARLY.info("call_failed", detail="refused tok-" + "x" * 20)
        get_logger("late-module").info("positive_control", detail="tok-" + "x" * 20)
    finally:
        structlog.reset_defaults()
    early, late = (json.loads(line) for line in out.getvalue().splitlines())
    assert early["detail"] == "refused [REDACTED]"
    assert early["component"] == "early-module"
    assert late["detail"] == "[REDACTED]"

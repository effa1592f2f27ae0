"""Logs: every configured secret removed by value wherever it lands; JSON off a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from auto_review.logs import REDACTED, SecretRedactor, configure_logging, get_logger

SECRET = "tok-4f1c9a0e7d2b6c3a"
OTHER = "key-99887766554433"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    configure_logging(secrets=())
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
            root.removeHandler(handler)


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_logs_redact_a_secret_in_the_message() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET], stream=out)
    get_logger("t").info(f"calling with token {SECRET} now")
    assert SECRET not in out.getvalue()
    assert _json_lines(out)[0]["event"] == f"calling with token {REDACTED} now"


def test_logs_redact_every_configured_secret() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET, OTHER], stream=out)
    get_logger("t").info("both", a=SECRET, b=f"x{OTHER}y")
    assert SECRET not in out.getvalue()
    assert OTHER not in out.getvalue()
    line = _json_lines(out)[0]
    assert (line["a"], line["b"]) == (REDACTED, f"x{REDACTED}y")


def test_logs_redact_secrets_in_nested_dicts_lists_and_tuples() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET], stream=out)
    get_logger("t").info(
        "nested",
        headers={"Authorization": f"token {SECRET}", SECRET: "as a key"},
        attempts=[1, {"body": [SECRET, (SECRET, 2)]}],
        pair=("x", SECRET),
        raw=SECRET.encode(),
    )
    assert SECRET not in out.getvalue()
    line = _json_lines(out)[0]
    assert line["headers"] == {"Authorization": f"token {REDACTED}", REDACTED: "as a key"}
    assert line["attempts"] == [1, {"body": [REDACTED, [REDACTED, 2]]}]
    assert line["pair"] == ["x", REDACTED]
    assert line["raw"] == REDACTED


def test_logs_redact_secrets_in_exception_text_with_exc_info() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET], stream=out)
    try:
        raise RuntimeError(f"upstream said: bad token {SECRET}")
    except RuntimeError:
        get_logger("t").exception("call failed")
    text = out.getvalue()
    assert SECRET not in text
    line = _json_lines(out)[0]
    assert "RuntimeError: upstream said: bad token [REDACTED]" in line["exception"]


def test_logs_redact_secrets_in_an_exception_passed_as_a_field() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET], stream=out)
    get_logger("t").warning("retrying", error=ValueError(f"denied {SECRET}"))
    assert SECRET not in out.getvalue()
    assert _json_lines(out)[0]["error"] == f"ValueError: denied {REDACTED}"


def test_logs_redact_secrets_in_readable_terminal_output() -> None:
    out = _Tty()
    configure_logging(secrets=[SECRET], stream=out)
    try:
        raise RuntimeError(f"bad token {SECRET}")
    except RuntimeError:
        get_logger("t").error("failed", token=SECRET, exc_info=True)
    text = out.getvalue()
    assert SECRET not in text
    assert REDACTED in text


def test_logs_redact_secrets_bound_in_context() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET], stream=out)
    get_logger("t").bind(url=f"https://x/?t={SECRET}").info("bound")
    structlog.contextvars.bind_contextvars(ctx=SECRET)
    try:
        get_logger("t").info("contextvar")
    finally:
        structlog.contextvars.clear_contextvars()
    assert SECRET not in out.getvalue()


def test_logs_keep_events_without_secrets_unchanged() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET], stream=out)
    get_logger("t").info("plain", count=3, ok=True, ratio=0.5, nothing=None)
    line = _json_lines(out)[0]
    assert (line["count"], line["ok"], line["ratio"], line["nothing"]) == (3, True, 0.5, None)
    assert line["component"] == "t"
    assert line["level"] == "info"


def test_logs_write_json_when_the_stream_is_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger("gateway").info("started", port=8080)
    line = _json_lines(out)[0]
    assert line["event"] == "started"
    assert line["port"] == 8080
    assert "timestamp" in line


def test_logs_write_readable_text_on_a_terminal() -> None:
    out = _Tty()
    configure_logging(stream=out)
    get_logger("gateway").info("started", port=8080)
    text = out.getvalue()
    assert "started" in text
    assert "port=8080" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_logs_format_setting_overrides_terminal_detection() -> None:
    out = _Tty()
    configure_logging(fmt="json", stream=out)
    get_logger("t").info("forced")
    assert _json_lines(out)[0]["event"] == "forced"


def test_logs_drop_events_below_the_configured_level() -> None:
    out = io.StringIO()
    configure_logging(level="warning", stream=out)
    get_logger("t").info("hidden")
    get_logger("t").warning("shown")
    assert [line["event"] for line in _json_lines(out)] == ["shown"]


def test_redactor_replaces_a_longer_secret_whole_when_it_contains_a_shorter_one() -> None:
    redactor = SecretRedactor(["abcdef", "abcdef-ghijkl"])
    assert redactor.scrub("x abcdef-ghijkl y") == f"x {REDACTED} y"


def test_redactor_ignores_values_too_short_to_redact_safely() -> None:
    assert SecretRedactor(["a"]).scrub("banana") == "banana"


def test_logs_redact_secrets_in_standard_library_records() -> None:
    out = io.StringIO()
    configure_logging(secrets=[SECRET], stream=out)
    library = logging.getLogger("httpx.test")
    library.info("GET https://forge/api?token=%s", SECRET)
    try:
        raise OSError(f"refused {SECRET}")
    except OSError:
        library.exception("connection failed")
    assert SECRET not in out.getvalue()
    lines = _json_lines(out)
    assert lines[0]["event"] == f"GET https://forge/api?token={REDACTED}"
    assert lines[0]["logger"] == "httpx.test"
    assert f"OSError: refused {REDACTED}" in lines[1]["exception"]

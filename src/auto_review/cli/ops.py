"""``auto-review ops doctor|status``: is this host ready, and how is the running gateway doing.

``doctor`` probes for real (forge, token, models, git, secrets, state, isolation tier) and
exits 1 on any FAIL. ``status`` reads a running gateway's ``/version``, ``/info`` and
``/metrics`` (with ``AR_OPERATOR_TOKEN`` when set) and exits 1 if it cannot. Both name the
reason of each isolation control that is not on, in the sandbox's words.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from auto_review.cli._common import JSON_OPTION, out_console, print_json
from auto_review.cli._common import load as load_settings
from auto_review.ops import CheckState, GatewayStatus, gateway_status, run_doctor
from auto_review.review.output import printable

__all__ = ["app"]

app = typer.Typer(help="Diagnose this host and look at a running gateway.", no_args_is_help=True)

_COLOUR = {CheckState.PASS: "green", CheckState.WARN: "yellow", CheckState.FAIL: "red"}
_TIMEOUT = typer.Option(5.0, "--timeout", min=0.1, help="Seconds each network probe may take.")


@app.command("doctor")
def doctor(timeout: float = _TIMEOUT, as_json: bool = JSON_OPTION) -> None:
    """Probe forge, token, models, git, secrets, state dir and isolation; exit 1 on any FAIL."""
    settings = load_settings()
    report = asyncio.run(run_doctor(settings, timeout_secs=timeout))
    if as_json:
        print_json(report.to_dict())
    else:
        for c in report.checks:
            colour = _COLOUR[c.state]
            # Details quote forge and model answers and the state database: control characters
            # shown as escapes, never read as rich markup.
            detail = escape(printable(c.detail))
            out_console.print(f"[{colour}]{c.state.value}[/] {c.name}: {detail}")
            for control in c.controls:
                if control.state != "on":
                    line = f"     {control.name} {control.state}: {control.reason}"
                    out_console.print(printable(line), markup=False)
            if c.fix:
                out_console.print(printable(f"     fix: {c.fix}"), markup=False)
        failed = sum(c.state is CheckState.FAIL for c in report.checks)
        warned = sum(c.state is CheckState.WARN for c in report.checks)
        out_console.print(f"{failed} failed, {warned} warning(s), "
                          f"{len(report.checks) - failed - warned} passed")  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)


def _kv(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items()) or "none"


def _row(table: Table, label: str, value: str) -> None:
    # The gateway's answers are shown as text, not markup, their control characters escaped.
    table.add_row(Text(printable(label)), Text(printable(value)))


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if /info gave an object there, else empty: a subverted gateway's answer is
    shown as far as it has the expected shape, never a traceback."""
    return value if isinstance(value, dict) else {}


def _render(s: GatewayStatus) -> None:
    info = s.info
    iso, queue, poller, bot, model = (
        _obj(info.get(k)) for k in ("isolation", "queue", "poller", "bot", "model")
    )
    tiers = model.get("tiers")
    title = Text(printable(f"auto-review {s.version} at {s.url}"))
    table = Table(show_header=False, title=title)
    _row(table, "bot", f"@{bot.get('login', '?')} (mention @{bot.get('mention', '?')})")
    _row(table, "review mode", f"{info.get('review_mode', '?')}; CI endpoint "
                  f"{'on' if info.get('ci_endpoint') else 'off'}")  # fmt: skip
    _row(table, "model", f"{model.get('reasoning_model', '?')} (tiers: "
                  f"{', '.join(map(str, tiers)) if isinstance(tiers, list) else '?'})")  # fmt: skip
    controls = _obj(iso.get("controls"))
    reasons = _obj(iso.get("reasons"))  # absent from a gateway older than this client
    _row(table, "isolation", f"tier {iso.get('tier', '?')}: {_kv(controls)}")
    for name, state in controls.items():
        if state != "on" and reasons.get(name):
            _row(table, f"  {name} {state}", str(reasons[name]))
    states = {k: v for k, v in queue.items() if k not in ("by_kind",)}
    _row(table, "queue", _kv(states))
    _row(table, "poller", f"{'on' if poller.get('enabled') else 'off'}, tracked PRs "
                  f"{_kv(_obj(poller.get('tracked_prs')))}")  # fmt: skip
    _row(table, "readiness", _kv({k: "ok" if v else "FAILING" for k, v in s.readiness.items()}))
    _row(table, "reviews since start", _kv(s.review_outcomes))
    _row(table, "chat jobs since start", _kv(s.chat_outcomes))
    _row(table, "webhooks", _kv(s.webhooks))
    _row(table, "signature failures", _kv(s.signature_failures))
    _row(table, "payload failures", str(s.payload_failures))
    _row(table, "rate limited", str(s.rate_limited))
    _row(table, "CI requests", _kv(s.ci_requests))
    _row(table, "model tokens", f"{_kv(s.tokens)}; cost ${s.cost_usd:.4f}")
    out_console.print(table)


@app.command("status")
def status(
    gateway_url: str = typer.Option(..., "--gateway-url", help="Base URL of the gateway."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds per request."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One screen from the gateway's /version, /info and /metrics; exit 1 if unreachable."""
    settings = load_settings()
    result = asyncio.run(
        gateway_status(gateway_url, timeout_secs=timeout, operator_token=settings.operator_token)
    )
    if as_json:
        print_json(result.to_dict())
    else:
        _render(result)

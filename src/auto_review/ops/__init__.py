"""Operator functions behind ``auto-review`` set-up and diagnostics commands.

The bot's token (``mint_bot_token``), webhooks (``register_webhook``, ``list_webhooks``,
``unregister_webhooks``, ``probe_webhook``), the health of this host and its upstreams
(``run_doctor``), and the state of a running gateway (``gateway_status``). The CLI renders
what these return; nothing here prints.
"""

from auto_review.ops._auth import mint_bot_token
from auto_review.ops._doctor import MIN_GIT_VERSION, Check, CheckState, DoctorReport, run_doctor
from auto_review.ops._gateway_http import GatewayUnreachable
from auto_review.ops._status import GatewayStatus, gateway_status
from auto_review.ops._webhook_probe import (
    SAMPLE_PR_NUMBER,
    SAMPLE_REPO,
    DeliveryCheck,
    WebhookTestReport,
    probe_webhook,
)
from auto_review.ops._webhooks import (
    WEBHOOK_EVENTS,
    WEBHOOK_PATH,
    HookAdmin,
    Registration,
    check_webhook_secret,
    hook_url,
    list_webhooks,
    register_webhook,
    unregister_webhooks,
)

__all__ = [
    "MIN_GIT_VERSION",
    "SAMPLE_PR_NUMBER",
    "SAMPLE_REPO",
    "WEBHOOK_EVENTS",
    "WEBHOOK_PATH",
    "Check",
    "CheckState",
    "DeliveryCheck",
    "DoctorReport",
    "GatewayStatus",
    "GatewayUnreachable",
    "HookAdmin",
    "Registration",
    "WebhookTestReport",
    "check_webhook_secret",
    "gateway_status",
    "hook_url",
    "list_webhooks",
    "mint_bot_token",
    "probe_webhook",
    "register_webhook",
    "run_doctor",
    "unregister_webhooks",
]

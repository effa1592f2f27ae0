"""``ops status``: one summary of a running gateway from ``/version``, ``/info`` and ``/metrics``.

Only those three operator endpoints are read; none carries a secret. ``/info`` and ``/metrics``
get ``Authorization: Bearer`` with ``AR_OPERATOR_TOKEN`` when it is set (a gateway with the
token set answers 401 without it); ``/version`` never does. Counters are cumulative since the
gateway started, so "recent outcomes" means outcomes since the last start.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from auto_review.errors import AutoReviewError
from auto_review.ops._gateway_http import GatewayAnswer, gateway_client, gateway_request
from auto_review.ops._webhooks import hook_url

__all__ = ["GatewayStatus", "gateway_status"]

_PREFIX = "auto_review_"


@dataclass(frozen=True)
class GatewayStatus:
    """What a running gateway reports about itself; ``to_dict`` is the ``--json`` form."""

    url: str
    version: str
    info: dict[str, Any]
    review_outcomes: dict[str, int]  # jobs_finished_total{kind="review"} by result
    chat_outcomes: dict[str, int]
    webhooks: dict[str, int]  # webhook requests by outcome
    signature_failures: dict[str, int]
    payload_failures: int
    rate_limited: int
    ci_requests: dict[str, int]
    tokens: dict[str, int]  # by direction
    cost_usd: float
    readiness: dict[str, bool]
    queue_depth: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "version": self.version,
            "info": self.info,
            "review_outcomes": self.review_outcomes,
            "chat_outcomes": self.chat_outcomes,
            "webhooks": self.webhooks,
            "signature_failures": self.signature_failures,
            "payload_failures": self.payload_failures,
            "rate_limited": self.rate_limited,
            "ci_requests": self.ci_requests,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "readiness": self.readiness,
            "queue_depth": self.queue_depth,
        }


def _refused(answer: GatewayAnswer, what: str, *, token_sent: bool) -> None:
    """``AutoReviewError`` naming the fix if ``answer`` is not a 200."""
    if answer.status == 401:
        fix = (
            "AR_OPERATOR_TOKEN here differs from the gateway's"
            if token_sent
            else "it requires a bearer token: set AR_OPERATOR_TOKEN to the gateway's value"
        )
        raise AutoReviewError(f"the gateway answered 401 to {what}: {fix}")
    if answer.status != 200:
        raise AutoReviewError(f"the gateway answered {answer.status} to {what}")


def _json(answer: GatewayAnswer, what: str, *, token_sent: bool = False) -> dict[str, Any]:
    _refused(answer, what, token_sent=token_sent)
    try:
        data = json.loads(answer.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AutoReviewError(
            f"{what} did not answer JSON; is this an auto-review gateway?"
        ) from exc
    if not isinstance(data, dict):
        raise AutoReviewError(f"{what} did not answer a JSON object")
    return data


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if not math.isfinite(sample.value):  # a subverted gateway's: int() would raise
                    continue
                found[sample.name.removeprefix(_PREFIX)].append((dict(sample.labels), sample.value))
    except ValueError as exc:
        raise AutoReviewError("/metrics is not in the Prometheus text format") from exc
    return found


def _by(
    samples: dict[str, list[tuple[dict[str, str], float]]],
    name: str,
    label: str,
    **where: str,
) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for labels, value in samples.get(name, []):
        if all(labels.get(k) == v for k, v in where.items()):
            totals[labels.get(label, "")] += int(value)
    return {k: v for k, v in sorted(totals.items()) if v}


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _labels, value in samples.get(name, []))


async def gateway_status(
    gateway_url: str, *, timeout_secs: float = 10.0, operator_token: SecretStr | None = None
) -> GatewayStatus:
    """Read the three endpoints; ``AutoReviewError`` (exit 1) if the gateway cannot be read."""
    base = hook_url(gateway_url).removesuffix("/webhooks/forgejo")
    auth: dict[bytes, bytes] = {}
    if operator_token is not None:
        # As bytes: httpx refuses a str header value that is not ASCII (F64).
        auth[b"Authorization"] = f"Bearer {operator_token.get_secret_value()}".encode()
    sent = bool(auth)
    async with gateway_client(timeout_secs) as client:
        version = _json(await gateway_request(client, "GET", f"{base}/version"), "/version")
        answer = await gateway_request(client, "GET", f"{base}/info", headers=auth)
        info = _json(answer, "/info", token_sent=sent)
        metrics = await gateway_request(client, "GET", f"{base}/metrics", headers=auth)
    _refused(metrics, "/metrics", token_sent=sent)
    s = _samples(metrics.text())
    return GatewayStatus(
        url=base,
        version=str(version.get("version", "?")),
        info=info,
        review_outcomes=_by(s, "jobs_finished_total", "result", kind="review"),
        chat_outcomes=_by(s, "jobs_finished_total", "result", kind="chat"),
        webhooks=_by(s, "webhook_requests_total", "outcome"),
        signature_failures=_by(s, "webhook_signature_failures_total", "reason"),
        payload_failures=int(_total(s, "webhook_payload_failures_total")),
        rate_limited=int(_total(s, "webhook_rate_limited_total")),
        ci_requests=_by(s, "ci_requests_total", "outcome"),
        tokens=_by(s, "model_tokens_total", "direction"),
        cost_usd=round(_total(s, "model_cost_usd_total"), 6),
        readiness={
            labels.get("check", ""): value >= 1 for labels, value in s.get("readiness_check", [])
        },
        queue_depth={
            labels.get("kind", ""): int(value) for labels, value in s.get("queue_depth", [])
        },
    )

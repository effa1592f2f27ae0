"""``webhook test``: prove that a running gateway accepts correctly signed deliveries.

Two deliveries are sent as Forgejo sends them (hex HMAC-SHA256 of the raw body in
``X-Forgejo-Signature``, a fresh delivery id each): a ``ping`` (answered 200 ``pong``) and a
sample ``pull_request`` event (answered 202). The sample is a ``closed`` event for PR
``SAMPLE_PR_NUMBER`` of the given repository, so the gateway records it and has nothing to
review or cancel: it never starts work or touches the forge. It carries the time it was sent
as ``updated_at`` (to the microsecond), as a forge's event does, so a second run is a new body
and not answered as a replay of the first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pydantic import SecretStr

from auto_review.errors import ConfigError
from auto_review.hosts import RepoRef
from auto_review.ops._gateway_http import gateway_client, gateway_request
from auto_review.ops._webhooks import hook_url

__all__ = ["SAMPLE_PR_NUMBER", "SAMPLE_REPO", "DeliveryCheck", "WebhookTestReport", "probe_webhook"]

SAMPLE_REPO = RepoRef("auto-review", "webhook-test")
SAMPLE_PR_NUMBER = 2_147_483_647  # no forge gets there: the sample cannot name a real PR
_SAMPLE_SHA = "0123456789abcdef0123456789abcdef01234567"
_EXPECTED = {"ping": 200, "pull_request": 202}
_SHOWN_BODY_CHARS = 200


@dataclass(frozen=True)
class DeliveryCheck:
    """One signed delivery and what the gateway answered (``status`` None: no answer)."""

    event: str
    delivery_id: str
    expected_status: int
    status: int | None
    answer: str

    @property
    def accepted(self) -> bool:
        return self.status == self.expected_status


@dataclass(frozen=True)
class WebhookTestReport:
    url: str
    deliveries: tuple[DeliveryCheck, ...]

    @property
    def ok(self) -> bool:
        return all(d.accepted for d in self.deliveries)

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "ok": self.ok,
            "deliveries": [asdict(d) | {"accepted": d.accepted} for d in self.deliveries],
        }


def _sample_pull_request(repo: RepoRef) -> dict[str, object]:
    owner = {"login": repo.owner, "username": repo.owner}
    branch = {"ref": "webhook-test", "sha": _SAMPLE_SHA}
    return {
        "action": "closed",
        "number": SAMPLE_PR_NUMBER,
        "pull_request": {
            "number": SAMPLE_PR_NUMBER,
            "state": "closed",
            "title": "auto-review webhook test (sample event)",
            "head": branch,
            "base": {"ref": "main", "sha": _SAMPLE_SHA},
            # The gateway answers a byte-identical pull_request body "duplicate" (F66).
            "updated_at": datetime.now(UTC).isoformat(),
        },
        "repository": {"name": repo.name, "full_name": repo.full_name, "owner": owner},
        "sender": owner,
    }


async def probe_webhook(
    gateway_url: str,
    secret: SecretStr | None,
    *,
    repo: RepoRef | None = None,
    timeout_secs: float = 10.0,
) -> WebhookTestReport:
    """Send the signed ping and sample event; report each answer (never raises on a status)."""
    # Sign with whatever the gateway holds: judging its strength is `register`'s and doctor's job.
    if secret is None or not secret.get_secret_value():
        raise ConfigError("WEBHOOK_SECRET is not set", ("set it to the gateway's secret",))
    key = secret.get_secret_value().encode()
    url = hook_url(gateway_url)
    payloads = {
        "ping": {"hook_id": 0, "zen": "auto-review webhook test"},
        "pull_request": _sample_pull_request(repo or SAMPLE_REPO),
    }
    checks = []
    async with gateway_client(timeout_secs) as client:
        for event, payload in payloads.items():
            body = json.dumps(payload).encode()
            delivery = str(uuid.uuid4())
            headers = {
                "Content-Type": "application/json",
                "X-Forgejo-Event": event,
                "X-Forgejo-Delivery": delivery,
                "X-Forgejo-Signature": hmac.new(key, body, hashlib.sha256).hexdigest(),
            }
            answer = await gateway_request(client, "POST", url, content=body, headers=headers)
            checks.append(
                DeliveryCheck(
                    event,
                    delivery,
                    _EXPECTED[event],
                    answer.status,
                    answer.text()[:_SHOWN_BODY_CHARS].strip(),
                )
            )
    return WebhookTestReport(url, tuple(checks))

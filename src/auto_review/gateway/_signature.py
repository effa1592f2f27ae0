"""Webhook authentication: HMAC-SHA256 of the raw body, compared in constant time.

Headers, in order of preference: ``X-Forgejo-Signature`` and ``X-Gitea-Signature`` (bare hex),
``X-Hub-Signature-256`` (``sha256=`` + hex, GitHub style, which Forgejo also sends). The three
failure reasons are kept apart because they mean different things to an operator: *missing* is
someone probing the endpoint, *mismatch* with a well-formed value is usually a secret that
drifted between forge and gateway, *malformed* is a broken client.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum

__all__ = ["SignatureFailure", "verify_signature"]

_HEX = frozenset("0123456789abcdef")
_DIGEST_HEX_LEN = 64


class SignatureFailure(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    MISMATCH = "mismatch"


def _presented(headers: Mapping[str, str]) -> str | None:
    for name in ("x-forgejo-signature", "x-gitea-signature"):
        value = headers.get(name)
        if value is not None and value.strip():
            return value.strip().lower()
    hub = headers.get("x-hub-signature-256")
    if hub is not None and hub.strip():
        value = hub.strip()
        if not value.lower().startswith("sha256="):
            return ""  # present but not in the one format this header has
        return value[len("sha256=") :].lower()
    return None


def verify_signature(
    secret: bytes, body: bytes, headers: Mapping[str, str]
) -> SignatureFailure | None:
    """``None`` when the body is signed with ``secret``; else why it is not."""
    presented = _presented(headers)
    if presented is None:
        return SignatureFailure.MISSING
    if len(presented) != _DIGEST_HEX_LEN or not set(presented) <= _HEX:
        return SignatureFailure.MALFORMED
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        return SignatureFailure.MISMATCH
    return None

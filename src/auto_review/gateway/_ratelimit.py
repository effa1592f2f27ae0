"""Token buckets for the webhook route: one global, one per client address.

Checked before the body is read or any HMAC is computed, so an unsigned flood costs a dictionary
lookup. The per-client table is bounded: past ``max_clients`` the least recently seen entry is
dropped (a dropped client starts again with a full bucket, which only helps it by one burst).
A client is its address, except that an IPv6 address counts by its /64: one host is usually
given a whole /64, and rotating through it must not buy a fresh bucket per request.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

from auto_review.jobs import Clock

__all__ = ["RateDecision", "TokenBucket", "WebhookRateLimiter", "client_key"]

_V6_HOST_BITS = 64


def client_key(address: str) -> str:
    """The bucket key of a peer address: itself, or ``<prefix>/64`` for a native IPv6 one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        prefix = int(ip) >> _V6_HOST_BITS << _V6_HOST_BITS
        return f"{ipaddress.IPv6Address(prefix)}/64"
    return address


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second on the monotonic clock."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token; return 0 on success, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    scope: str = ""  # "global" or "client" when refused
    retry_after: int = 0  # whole seconds, for the Retry-After header


class WebhookRateLimiter:
    """Global and per-client buckets; a request must get a token from both."""

    def __init__(
        self,
        *,
        clock: Clock,
        rate: float,
        burst: int,
        client_rate: float,
        client_burst: int,
        max_clients: int = 10_000,
    ) -> None:
        self._clock = clock
        self._global = TokenBucket(rate, burst, clock.monotonic())
        self._client_rate = client_rate
        self._client_burst = client_burst
        self._max_clients = max_clients
        self._clients: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, client: str) -> RateDecision:
        client = client_key(client)
        now = self._clock.monotonic()
        bucket = self._clients.get(client)
        if bucket is None:
            bucket = TokenBucket(self._client_rate, self._client_burst, now)
            self._clients[client] = bucket
            if len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client)
        # The client bucket first: one noisy sender must not drain the shared budget.
        wait = bucket.take(now)
        if wait > 0:
            return RateDecision(False, "client", max(1, math.ceil(wait)))
        wait = self._global.take(now)
        if wait > 0:
            bucket.tokens = min(bucket.burst, bucket.tokens + 1.0)  # give the client token back
            return RateDecision(False, "global", max(1, math.ceil(wait)))
        return RateDecision(True)

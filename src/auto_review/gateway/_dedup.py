"""Replay protection by delivery id (``X-Forgejo-Delivery`` / ``X-Gitea-Delivery``).

A delivery is *recorded only after it was accepted*: a delivery that failed (400, 5xx) may be
redelivered by the forge and must then be processed, not answered "duplicate". While one
delivery is being handled, a concurrent copy is refused with 409 rather than processed twice.
Rows older than the TTL are pruned (at most once a minute), so the table stays bounded.
"""

from __future__ import annotations

from auto_review.errors import StoreError
from auto_review.jobs import Clock
from auto_review.logs import get_logger
from auto_review.store import Store

__all__ = ["MAX_DELIVERY_ID_LEN", "DeliveryDedup"]

MAX_DELIVERY_ID_LEN = 128
_PRUNE_EVERY_SECS = 60.0
_log = get_logger("gateway.dedup")


class DeliveryDedup:
    """Remembers accepted delivery ids for ``ttl_secs``."""

    def __init__(self, store: Store, *, clock: Clock, ttl_secs: float) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl_secs
        self._in_flight: set[str] = set()
        self._last_prune = float("-inf")

    def seen(self, delivery_id: str) -> bool:
        """True when this delivery was accepted before (within the TTL)."""
        cutoff = self._clock.time() - self._ttl
        try:
            with self._store.read() as conn:
                row = conn.execute(
                    "SELECT 1 FROM webhook_deliveries WHERE delivery_id = ? AND accepted_at >= ?",
                    (delivery_id, cutoff),
                ).fetchone()
        except StoreError:
            # Fail open: HMAC already passed and every enqueue is idempotent, so processing a
            # replay costs at most one coalesced job; refusing would drop real work.
            _log.warning("dedup_store_unavailable")
            return False
        return row is not None

    def begin(self, delivery_id: str) -> bool:
        """Mark a delivery as being handled; False if a copy of it is already in progress."""
        if delivery_id in self._in_flight:
            return False
        self._in_flight.add(delivery_id)
        return True

    def end(self, delivery_id: str, *, accepted: bool, event: str) -> None:
        """Finish handling; record the id only if the delivery was accepted."""
        self._in_flight.discard(delivery_id)
        if not accepted:
            return
        now = self._clock.time()
        try:
            with self._store.write() as conn:
                conn.execute(
                    "INSERT INTO webhook_deliveries (delivery_id, event, accepted_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (delivery_id) DO UPDATE SET"
                    " accepted_at = excluded.accepted_at",
                    (delivery_id, event, now),
                )
                if now - self._last_prune >= _PRUNE_EVERY_SECS:
                    self._last_prune = now
                    conn.execute(
                        "DELETE FROM webhook_deliveries WHERE accepted_at < ?", (now - self._ttl,)
                    )
        except StoreError:
            _log.warning("dedup_record_failed")

    def prune(self) -> int:
        """Delete ids older than the TTL now; returns how many went."""
        now = self._clock.time()
        with self._store.write() as conn:
            cursor = conn.execute(
                "DELETE FROM webhook_deliveries WHERE accepted_at < ?", (now - self._ttl,)
            )
        self._last_prune = now
        return cursor.rowcount

    def count(self) -> int:
        with self._store.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0])

"""Replay protection by delivery id (``X-Forgejo-Delivery`` / ``X-Gitea-Delivery``) and, for
``pull_request`` events, by a digest of the signed body (``body_key``).

The forge signs only the body, so the delivery id alone does not stop a captured body re-sent
under fresh ids; the body key does. It lives in the same table, under a name no delivery id can
take (ids must be printable; the key holds a tab), with the same TTL, mirror and group commit.

A delivery is *recorded only after it was accepted*: a delivery that failed (400, 5xx) may be
redelivered by the forge and must then be processed, not answered "duplicate". While one
delivery is being handled, a concurrent copy is refused with 409 rather than processed twice.
Rows older than the TTL are pruned (at most once a minute), so the table stays bounded.

The table is the durable record; lookups go to an in-memory mirror of it (loaded at start,
written through on every record, pruned with it), because one gateway process owns its state
directory and a database round trip per delivery would dominate intake. If the table holds
more ids than the mirror may, misses fall back to the database. Records are group-committed:
written at most ``_FLUSH_AFTER_SECS`` after acceptance (and at shutdown), so a crash forgets at
most that window's ids; a replay of one of those would be processed again, which costs at most
a coalesced job (every enqueue is idempotent; a review request whose forced review finished is
reviewed again), never a lost delivery.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict

from auto_review.errors import StoreError
from auto_review.jobs import Clock
from auto_review.logs import get_logger
from auto_review.store import Store

__all__ = ["MAX_DELIVERY_ID_LEN", "DeliveryDedup", "body_key"]

MAX_DELIVERY_ID_LEN = 128
MAX_MIRRORED_IDS = 500_000  # ~60 MB at most; a week of a busy forge's deliveries
_PRUNE_EVERY_SECS = 60.0
_FLUSH_AFTER_SECS = 0.05
_FLUSH_AT = 256
_log = get_logger("gateway.dedup")


def body_key(body: bytes) -> str:
    """The dedup key of a signed body; the tab keeps it apart from every acceptable delivery id."""
    return "body\tsha256:" + hashlib.sha256(body).hexdigest()


class DeliveryDedup:
    """Remembers accepted delivery ids for ``ttl_secs``."""

    def __init__(
        self, store: Store, *, clock: Clock, ttl_secs: float, max_mirrored: int = MAX_MIRRORED_IDS
    ) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl_secs
        self._max = max_mirrored
        self._in_flight: set[str] = set()
        self._last_prune = float("-inf")
        # delivery id -> accepted_at, oldest first (ids are recorded in time order).
        self._mirror: OrderedDict[str, float] = OrderedDict()
        self._pending: list[tuple[str, str, float]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._complete = self._load()

    def _load(self) -> bool:
        cutoff = self._clock.time() - self._ttl
        try:
            with self._store.read() as conn:
                rows = conn.execute(
                    "SELECT delivery_id, accepted_at FROM webhook_deliveries"
                    " WHERE accepted_at >= ? ORDER BY accepted_at DESC LIMIT ?",
                    (cutoff, self._max + 1),
                ).fetchall()
        except StoreError:
            _log.warning("dedup_store_unavailable")
            return False
        for delivery_id, accepted_at in reversed(rows[: self._max]):
            self._mirror[delivery_id] = accepted_at
        return len(rows) <= self._max

    def seen(self, delivery_id: str) -> bool:
        """True when this delivery was accepted before (within the TTL)."""
        cutoff = self._clock.time() - self._ttl
        accepted_at = self._mirror.get(delivery_id)
        if accepted_at is not None:
            return accepted_at >= cutoff
        if self._complete:
            return False
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
        self._mirror.pop(delivery_id, None)
        self._mirror[delivery_id] = now
        if len(self._mirror) > self._max:
            self._mirror.popitem(last=False)
            self._complete = False
        self._pending.append((delivery_id, event, now))
        if len(self._pending) >= _FLUSH_AT:
            self.flush()
        elif self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_handle = loop.call_later(_FLUSH_AFTER_SECS, self.flush)

    def flush(self) -> None:
        """Write the accepted ids not yet recorded (one transaction); prune when due."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending = self._pending, []
        now = self._clock.time()
        if not pending and now - self._last_prune < _PRUNE_EVERY_SECS:
            return
        try:
            with self._store.write() as conn:
                conn.executemany(
                    "INSERT INTO webhook_deliveries (delivery_id, event, accepted_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (delivery_id) DO UPDATE SET"
                    " accepted_at = excluded.accepted_at",
                    pending,
                )
                if now - self._last_prune >= _PRUNE_EVERY_SECS:
                    self._last_prune = now
                    conn.execute(
                        "DELETE FROM webhook_deliveries WHERE accepted_at < ?", (now - self._ttl,)
                    )
                    self._prune_mirror(now)
        except StoreError:
            # Kept for the next flush; the mirror still answers replays meanwhile.
            self._pending = pending + self._pending
            _log.warning("dedup_record_failed", pending=len(self._pending))

    def prune(self) -> int:
        """Delete ids older than the TTL now; returns how many went."""
        now = self._clock.time()
        with self._store.write() as conn:
            cursor = conn.execute(
                "DELETE FROM webhook_deliveries WHERE accepted_at < ?", (now - self._ttl,)
            )
        self._last_prune = now
        self._prune_mirror(now)
        return cursor.rowcount

    def count(self) -> int:
        """Recorded ids (after writing the pending ones)."""
        self.flush()
        with self._store.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0])

    def _prune_mirror(self, now: float) -> None:
        cutoff = now - self._ttl
        while self._mirror:
            oldest_id, accepted_at = next(iter(self._mirror.items()))
            if accepted_at >= cutoff:
                break
            self._mirror.pop(oldest_id)

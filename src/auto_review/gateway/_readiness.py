"""``/readyz``: are the forge and the model reachable? Cached, bounded, and quiet about why.

- Each probe runs under a timeout; a hung upstream costs at most ``timeout_secs``.
- One probe round at a time (single flight): concurrent callers await the same round, and each
  caller waits at most ``timeout_secs`` + 1 s, so nothing piles up behind a hung probe.
- Results are cached for ``ttl_secs`` (0 = probe on every call).
- The answer names each check and says ``ok`` or ``unreachable``; upstream error text never
  leaves the process (it goes to the log, where the redactor removes secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from auto_review.jobs import Clock
from auto_review.logs import get_logger

__all__ = ["Probe", "Readiness", "ReadinessResult"]

Probe = Callable[[], Awaitable[object]]
_log = get_logger("gateway.readiness")


@dataclass(frozen=True)
class ReadinessResult:
    checks: dict[str, bool]

    @property
    def ready(self) -> bool:
        return all(self.checks.values())

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {k: "ok" if v else "unreachable" for k, v in sorted(self.checks.items())},
        }


class Readiness:
    """Runs the injected probes; see the module docstring for the guarantees."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        clock: Clock,
        ttl_secs: float,
        timeout_secs: float = 5.0,
        on_result: Callable[[ReadinessResult], None] | None = None,
    ) -> None:
        self._probes = dict(probes)
        self._clock = clock
        self._ttl = ttl_secs
        self._timeout = timeout_secs
        self._on_result = on_result
        self._cached: tuple[float, ReadinessResult] | None = None
        self._round: asyncio.Task[ReadinessResult] | None = None

    async def check(self) -> ReadinessResult:
        now = self._clock.monotonic()
        if self._cached is not None and self._ttl > 0 and now - self._cached[0] < self._ttl:
            return self._cached[1]
        if self._round is None or self._round.done():
            self._round = asyncio.create_task(self._run_round())
        try:
            # shield: a caller that gives up must not cancel the round others are waiting on.
            async with asyncio.timeout(self._timeout + 1.0):
                return await asyncio.shield(self._round)
        except TimeoutError:
            return ReadinessResult({name: False for name in self._probes})

    async def _run_round(self) -> ReadinessResult:
        names = list(self._probes)
        results = await asyncio.gather(*(self._one(n) for n in names))
        result = ReadinessResult(dict(zip(names, results, strict=True)))
        self._cached = (self._clock.monotonic(), result)
        if self._on_result is not None:
            with contextlib.suppress(Exception):
                self._on_result(result)
        return result

    async def _one(self, name: str) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._probes[name]()
        except Exception as exc:
            _log.warning("readiness_probe_failed", check=name, error_type=type(exc).__name__)
            return False
        return True

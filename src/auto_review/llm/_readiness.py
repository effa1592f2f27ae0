"""Readiness probe: can each configured tier's endpoint be reached, and does it have the model?

``readiness(client)`` asks ``GET /v1/models`` once per distinct endpoint, with a short timeout
and no retries, and never raises an ``LLMError``: failures become ``TierStatus.detail`` text. The
gateway's ``/readyz`` and ``auto-review ops doctor`` render the result.

Model names match exactly, or with Ollama's implicit ``:latest`` tag on either side.
"""

from __future__ import annotations

from dataclasses import dataclass

from auto_review.errors import LLMError
from auto_review.llm._client import LLMClient
from auto_review.llm._types import Tier

__all__ = ["Readiness", "TierStatus", "readiness"]

DEFAULT_PROBE_TIMEOUT_SECS = 3.0


@dataclass(frozen=True)
class TierStatus:
    """One configured tier: endpoint reached? model listed? ``detail`` says why not (no secrets)."""

    tier: Tier
    base_url: str
    model: str
    reachable: bool
    model_present: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    """Every configured tier's status; ``ready`` when all are reachable and have their model."""

    tiers: tuple[TierStatus, ...]

    @property
    def ready(self) -> bool:
        return all(t.reachable and t.model_present for t in self.tiers)

    def problems(self) -> tuple[str, ...]:
        return tuple(f"{t.tier.value}: {t.detail}" for t in self.tiers if not t.model_present)


async def readiness(
    client: LLMClient, *, timeout_secs: float = DEFAULT_PROBE_TIMEOUT_SECS
) -> Readiness:
    """Probe every configured tier (see module docstring)."""
    listings: dict[tuple[str, str], tuple[str, ...] | str] = {}
    statuses = []
    for tier in Tier:
        if not client.has_tier(tier):
            continue
        cfg = client.tier_config(tier)
        # Tiers sharing an endpoint and key share one request.
        key = (cfg.base_url, cfg.api_key.get_secret_value() if cfg.api_key else "")
        if key not in listings:
            try:
                listings[key] = await client.list_models(tier, timeout_secs=timeout_secs)
            except LLMError as exc:
                listings[key] = exc.message
        listing = listings[key]
        if isinstance(listing, str):
            statuses.append(TierStatus(tier, cfg.base_url, cfg.model, False, False, listing))
            continue
        present = _listed(cfg.model, listing)
        detail = "ok" if present else f"model {cfg.model!r} is not served by {cfg.base_url}"
        statuses.append(TierStatus(tier, cfg.base_url, cfg.model, True, present, detail))
    return Readiness(tuple(statuses))


def _listed(model: str, available: tuple[str, ...]) -> bool:
    wanted = {model, model.removesuffix(":latest"), f"{model}:latest"}
    return any(name in wanted or name.removesuffix(":latest") in wanted for name in available)

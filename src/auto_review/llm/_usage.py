"""Token usage and cost, recorded per tier and model.

Prices are USD per one million tokens. ``PriceTable.default()`` knows a few well-known hosted
models (public list prices when this table was written; they change, so operators override them
with a JSON file at ``AR_PRICE_TABLE_PATH``, loaded by ``load_price_table``)::

    {"gpt-4o": {"input": 2.5, "output": 10.0},
     "https://llm.example/v1|my-model": {"input": 0.2, "output": 0.2},
     "text-embedding-3-small": {"embedding": 0.02}}

Lookup order: ``"<base_url>|<model>"``, then ``"<model>"``, then the model without a
``provider/`` prefix (OpenRouter style ``openai/gpt-4o``). A model found nowhere costs 0 and is
reported as unpriced (self-hosted models usually are), never silently as free. Embedding calls
are priced at the ``embedding`` rate (falling back to ``input``), never as chat input.

A ``UsageLedger`` is cheap: create one per review (``LLMClient.with_ledger``) to get that
review's totals; it is safe to share between concurrent tasks of one event loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auto_review.errors import ConfigError
from auto_review.llm._types import Tier, TokenUsage

__all__ = [
    "Price",
    "PriceTable",
    "UsageEntry",
    "UsageLedger",
    "UsageTotals",
    "load_price_table",
]

_PER_TOKEN = 1 / 1_000_000
_MAX_PRICE_FILE_BYTES = 1024 * 1024


class Price(BaseModel):
    """USD per 1M tokens. ``embedding`` applies to embedding calls (``input`` if unset)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)
    embedding: float | None = Field(default=None, ge=0)


# Public list prices (USD / 1M tokens) of a few hosted models; override with AR_PRICE_TABLE_PATH.
_DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gpt-4.1": Price(input=2.00, output=8.00),
    "gpt-4.1-mini": Price(input=0.40, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, output=0.40),
    "o3-mini": Price(input=1.10, output=4.40),
    "text-embedding-3-small": Price(embedding=0.02),
    "text-embedding-3-large": Price(embedding=0.13),
}


class PriceTable:
    """Model prices; ``lookup`` returns ``None`` for an unpriced model."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)

    @classmethod
    def default(cls) -> PriceTable:
        return cls(_DEFAULT_PRICES)

    def merged(self, overrides: Mapping[str, Price]) -> PriceTable:
        """A new table with ``overrides`` replacing or adding entries."""
        return PriceTable({**self._prices, **overrides})

    def lookup(self, base_url: str, model: str) -> Price | None:
        for key in (f"{base_url.rstrip('/')}|{model}", model, model.rpartition("/")[2]):
            if key in self._prices:
                return self._prices[key]
        return None

    def cost(self, tier: Tier, base_url: str, model: str, usage: TokenUsage) -> float | None:
        """USD for ``usage``, or ``None`` when the model has no price."""
        price = self.lookup(base_url, model)
        if price is None:
            return None
        if tier is Tier.EMBEDDING:
            rate = price.embedding if price.embedding is not None else price.input
            return usage.prompt_tokens * rate * _PER_TOKEN
        return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) * (
            _PER_TOKEN
        )


def load_price_table(path: Path | None) -> PriceTable:
    """The default table extended by the JSON file at ``path``; ``ConfigError`` if it is bad."""
    table = PriceTable.default()
    if path is None:
        return table
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_PRICE_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"AR_PRICE_TABLE_PATH: cannot read {path}: {exc.strerror}") from exc
    if len(raw) > _MAX_PRICE_FILE_BYTES:
        raise ConfigError(f"AR_PRICE_TABLE_PATH: {path} is larger than 1 MiB")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"AR_PRICE_TABLE_PATH: {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"AR_PRICE_TABLE_PATH: {path} must hold a JSON object")
    overrides: dict[str, Price] = {}
    problems: list[str] = []
    for key, value in data.items():
        try:
            overrides[str(key)] = Price.model_validate(value)
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                where = ".".join(str(p) for p in error["loc"])
                problems.append(f"{key}{'.' + where if where else ''}: {error['msg']}")
    if problems:
        raise ConfigError(f"AR_PRICE_TABLE_PATH: {path} has invalid entries", tuple(problems))
    return table.merged(overrides)


@dataclass(frozen=True)
class UsageEntry:
    """Totals of one (tier, endpoint, model). ``cost_usd`` is 0 when ``priced`` is false."""

    tier: Tier
    base_url: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    priced: bool


@dataclass(frozen=True)
class UsageTotals:
    """Everything a ledger recorded, entries ordered reasoning, cheap, embedding."""

    entries: tuple[UsageEntry, ...]

    @property
    def prompt_tokens(self) -> int:
        return sum(e.prompt_tokens for e in self.entries)

    @property
    def completion_tokens(self) -> int:
        return sum(e.completion_tokens for e in self.entries)

    @property
    def cost_usd(self) -> float:
        return sum(e.cost_usd for e in self.entries)

    @property
    def calls(self) -> int:
        return sum(e.calls for e in self.entries)

    @property
    def unpriced_models(self) -> tuple[str, ...]:
        return tuple(sorted({e.model for e in self.entries if not e.priced}))

    def for_tier(self, tier: Tier) -> tuple[UsageEntry, ...]:
        return tuple(e for e in self.entries if e.tier is tier)

    def tier_cost_usd(self, tier: Tier) -> float:
        return sum(e.cost_usd for e in self.for_tier(tier))


_TIER_ORDER = {Tier.REASONING: 0, Tier.CHEAP: 1, Tier.EMBEDDING: 2}


class UsageLedger:
    """Accumulates token usage and cost of model calls."""

    def __init__(self, prices: PriceTable | None = None) -> None:
        self._prices = prices if prices is not None else PriceTable.default()
        self._rows: dict[tuple[Tier, str, str], list[int]] = {}

    @property
    def prices(self) -> PriceTable:
        return self._prices

    def record(self, tier: Tier, base_url: str, model: str, usage: TokenUsage) -> None:
        row = self._rows.setdefault((tier, base_url, model), [0, 0, 0])
        row[0] += 1
        row[1] += usage.prompt_tokens
        row[2] += usage.completion_tokens

    def totals(self) -> UsageTotals:
        entries = []
        for (tier, base_url, model), (calls, prompt, completion) in self._rows.items():
            cost = self._prices.cost(tier, base_url, model, TokenUsage(prompt, completion))
            entries.append(
                UsageEntry(
                    tier=tier,
                    base_url=base_url,
                    model=model,
                    calls=calls,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cost_usd=cost or 0.0,
                    priced=cost is not None,
                )
            )
        entries.sort(key=lambda e: (_TIER_ORDER[e.tier], e.base_url, e.model))
        return UsageTotals(tuple(entries))

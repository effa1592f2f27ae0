"""Usage and cost: summed per tier and model, priced from the table, unknown models flagged."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import BaseModel
from tests.fakes.llm import ScriptedModel, reply, scripted_llm_client, vectors

from auto_review.errors import ConfigError
from auto_review.llm import (
    Message,
    Price,
    PriceTable,
    Tier,
    TokenUsage,
    UsageLedger,
    complete_structured,
    embed,
    load_price_table,
)
from auto_review.settings import LLMConfig


class Verdict(BaseModel):
    keep: bool


PRICES = PriceTable.default().merged(
    {
        "scripted-reasoning": Price(input=2.0, output=8.0),
        "scripted-cheap": Price(input=0.5, output=1.0),
        "scripted-embedding": Price(input=99.0, embedding=0.1),
    }
)


@pytest.mark.anyio
async def test_usage_and_cost_are_summed_per_tier_across_calls(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(
        reply({"keep": "maybe"}, prompt_tokens=1000, completion_tokens=100),  # invalid: re-asked
        reply({"keep": True}, prompt_tokens=1200, completion_tokens=50),
        reply("fine", prompt_tokens=400, completion_tokens=20),
    )
    scripted_model.script(vectors([1.0], [0.0], prompt_tokens=3000), endpoint="embeddings")
    ledger = UsageLedger(PRICES)
    async with scripted_llm_client(scripted_llm_config, ledger=ledger) as (client, _):
        result = await complete_structured(
            client, Tier.REASONING, system="s", user="u", output_model=Verdict
        )
        await client.chat(Tier.CHEAP, [Message("user", "ok?")])
        await embed(client, ["a", "b"])
    assert result.usage == TokenUsage(2200, 150)
    totals = ledger.totals()
    assert [e.tier for e in totals.entries] == [Tier.REASONING, Tier.CHEAP, Tier.EMBEDDING]
    reasoning, cheap, embedding = totals.entries
    assert (reasoning.calls, reasoning.prompt_tokens, reasoning.completion_tokens) == (2, 2200, 150)
    assert reasoning.cost_usd == pytest.approx((2200 * 2.0 + 150 * 8.0) / 1e6)
    assert cheap.cost_usd == pytest.approx((400 * 0.5 + 20 * 1.0) / 1e6)
    # Embedding tokens are priced at the embedding rate, not as chat input.
    assert embedding.cost_usd == pytest.approx(3000 * 0.1 / 1e6)
    assert totals.prompt_tokens == 5600
    assert totals.completion_tokens == 170
    assert totals.cost_usd == pytest.approx(
        reasoning.cost_usd + cheap.cost_usd + embedding.cost_usd
    )
    assert totals.tier_cost_usd(Tier.CHEAP) == pytest.approx(cheap.cost_usd)
    assert totals.unpriced_models == ()


@pytest.mark.anyio
async def test_unknown_models_cost_nothing_and_are_reported_unpriced(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(reply("x", prompt_tokens=10, completion_tokens=10))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        await client.chat(Tier.REASONING, [Message("user", "hi")])
    totals = client.ledger.totals()
    assert totals.cost_usd == 0.0
    assert totals.entries[0].priced is False
    assert totals.unpriced_models == ("scripted-reasoning",)


def test_price_lookup_prefers_endpoint_specific_entries_then_strips_provider_prefix() -> None:
    table = PriceTable.default().merged({"http://gw.internal|gpt-4o": Price(input=1.0, output=1.0)})
    assert table.lookup("http://gw.internal/", "gpt-4o") == Price(input=1.0, output=1.0)
    assert table.lookup("https://elsewhere", "gpt-4o") == Price(input=2.5, output=10.0)
    assert table.lookup("https://openrouter", "openai/gpt-4o-mini") == Price(input=0.15, output=0.6)
    assert table.lookup("http://localhost:11434", "qwen2.5-coder:32b") is None


def test_default_table_prices_embedding_models_as_embedding() -> None:
    cost = PriceTable.default().cost(
        Tier.EMBEDDING, "https://api", "text-embedding-3-small", TokenUsage(1_000_000, 0)
    )
    assert cost == pytest.approx(0.02)


def test_price_file_overrides_and_extends_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps({"gpt-4o": {"input": 1, "output": 2}, "local-coder": {"input": 0.01}})
    )
    table = load_price_table(path)
    assert table.lookup("x", "gpt-4o") == Price(input=1.0, output=2.0)
    assert table.lookup("x", "local-coder") == Price(input=0.01)
    assert table.lookup("x", "gpt-4o-mini") is not None
    assert load_price_table(None).lookup("x", "local-coder") is None


def test_price_file_with_bad_entries_is_refused_listing_each(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"a": {"input": -1}, "b": {"inptu": 1}, "c": {"output": 1}}))
    with pytest.raises(ConfigError) as caught:
        load_price_table(path)
    assert len(caught.value.problems) == 2
    assert any(p.startswith("a.input") for p in caught.value.problems)
    assert any(p.startswith("b.inptu") for p in caught.value.problems)


@pytest.mark.parametrize("content", ["not json", "[1, 2]"])
def test_price_file_that_is_not_a_json_object_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="AR_PRICE_TABLE_PATH"):
        load_price_table(path)


def test_missing_price_file_is_refused_with_the_setting_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AR_PRICE_TABLE_PATH: cannot read"):
        load_price_table(tmp_path / "absent.json")


@pytest.mark.anyio
async def test_client_prices_with_the_operators_price_file_and_fresh_ledgers_share_it(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig, tmp_path: Path
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"scripted-reasoning": {"input": 1.0, "output": 1.0}}))
    config = dataclasses.replace(scripted_llm_config, price_table_path=path)
    scripted_model.script(reply("x", prompt_tokens=500_000, completion_tokens=500_000))
    async with scripted_llm_client(config) as (client, _):
        review = client.with_ledger()
        await review.chat(Tier.REASONING, [Message("user", "hi")])
    assert review.ledger.totals().cost_usd == pytest.approx(1.0)
    assert client.ledger.totals().calls == 0


@pytest.mark.anyio
async def test_client_refuses_to_start_with_a_bad_price_file(
    scripted_llm_config: LLMConfig, tmp_path: Path
) -> None:
    path = tmp_path / "prices.json"
    path.write_text("{oops")
    config = dataclasses.replace(scripted_llm_config, price_table_path=path)
    with pytest.raises(ConfigError, match="not valid JSON"):
        async with scripted_llm_client(config):
            pass

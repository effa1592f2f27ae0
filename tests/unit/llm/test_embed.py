"""embed() batches, caps inputs, keeps order and records embedding usage."""

from __future__ import annotations

import dataclasses

import pytest
from tests.fakes.llm import (
    ScriptedModel,
    ScriptedModelServer,
    hashed_embedding,
    make_llm_config,
    scripted_llm_client,
    server_error,
)

from auto_review.errors import ConfigError
from auto_review.llm import Tier, embed
from auto_review.settings import LLMConfig

pytestmark = pytest.mark.anyio


async def test_embed_sends_batches_of_the_configured_size_in_order(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    config = dataclasses.replace(scripted_llm_config, embed_batch_size=2, embed_num_ctx=4096)
    texts = [f"text number {i}" for i in range(5)]
    async with scripted_llm_client(config) as (client, _):
        result = await embed(client, texts)
    requests = scripted_model.requests_to("/v1/embeddings")
    assert [r.body["input"] for r in requests] == [texts[0:2], texts[2:4], texts[4:5]]
    assert all(r.body["model"] == "scripted-embedding" for r in requests)
    assert all(r.body["options"] == {"num_ctx": 4096} for r in requests)
    assert result.vectors == tuple(hashed_embedding(t) for t in texts)
    assert result.model == "scripted-embedding"
    assert result.usage.prompt_tokens > 0
    assert client.ledger.totals().for_tier(Tier.EMBEDDING)[0].calls == 3


async def test_embed_cuts_texts_at_the_byte_cap_on_a_character_boundary(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    config = dataclasses.replace(scripted_llm_config, embed_input_cap_bytes=256)
    long_text = "ä" * 200  # 400 bytes; the cap falls inside no character
    async with scripted_llm_client(config) as (client, _):
        result = await embed(client, ["short", long_text])
    sent = scripted_model.requests_to("/v1/embeddings")[0].body["input"]
    assert sent[0] == "short"
    assert sent[1] == "ä" * 128
    assert result.truncated == 1


async def test_embed_of_nothing_makes_no_request(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        result = await embed(client, [])
    assert result.vectors == ()
    assert scripted_model.requests == []


async def test_embed_retries_a_failed_batch(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(server_error(503), endpoint="embeddings")
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        result = await embed(client, ["a"])
    assert len(result.vectors) == 1
    assert len(sleeps.calls) == 1


async def test_embed_without_an_embedding_tier_raises_config_error(
    scripted_model_server: ScriptedModelServer,
) -> None:
    config = make_llm_config(scripted_model_server.base_url, embedding=False)
    async with scripted_llm_client(config) as (client, _):
        with pytest.raises(ConfigError, match="LLM_EMBEDDING_MODEL"):
            await embed(client, ["a"])

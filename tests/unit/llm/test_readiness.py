"""readiness() reports, per tier, whether the endpoint answers and serves the model."""

from __future__ import annotations

import dataclasses

import pytest
from tests.fakes.llm import (
    ScriptedModel,
    ScriptedModelServer,
    hang,
    make_llm_config,
    scripted_llm_client,
    server_error,
)

from auto_review.llm import Tier, readiness
from auto_review.settings import LLMConfig

pytestmark = pytest.mark.anyio


async def test_readiness_is_ready_when_every_tier_model_is_served(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        result = await readiness(client)
    assert result.ready
    assert [t.tier for t in result.tiers] == [Tier.REASONING, Tier.CHEAP, Tier.EMBEDDING]
    assert all(t.detail == "ok" for t in result.tiers)
    # The three tiers share one endpoint and key: one request.
    assert len(scripted_model.requests_to("/v1/models")) == 1


async def test_readiness_names_a_tier_whose_model_is_missing(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.models = ["scripted-reasoning", "scripted-embedding"]
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        result = await readiness(client)
    assert not result.ready
    cheap = result.tiers[1]
    assert cheap.reachable
    assert not cheap.model_present
    assert result.problems() == (
        f"cheap: model 'scripted-cheap' is not served by {cheap.base_url}",
    )


async def test_readiness_matches_ollama_latest_tags_both_ways(
    scripted_model: ScriptedModel, scripted_model_server: ScriptedModelServer
) -> None:
    scripted_model.models = ["scripted-reasoning:latest"]
    config = make_llm_config(scripted_model_server.base_url, cheap=False, embedding=False)
    async with scripted_llm_client(config) as (client, _):
        assert (await readiness(client)).ready


async def test_readiness_reports_an_unreachable_endpoint_without_raising(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(server_error(503, "loading model"), endpoint="models")
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        result = await readiness(client)
    assert not result.ready
    assert all(not t.reachable for t in result.tiers)
    assert "loading model" in result.tiers[0].detail
    assert sleeps.calls == []  # a probe does not retry


async def test_readiness_gives_up_on_a_hung_endpoint_after_its_short_timeout(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    config = dataclasses.replace(scripted_llm_config, cheap=None, embedding=None)
    scripted_model.script(hang(), endpoint="models")
    async with scripted_llm_client(config) as (client, _):
        result = await readiness(client, timeout_secs=0.2)
    assert not result.ready
    assert "did not answer" in result.tiers[0].detail

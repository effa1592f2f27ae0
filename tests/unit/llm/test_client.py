"""The transport against the scripted model: retries, timeouts, error mapping, keys."""

from __future__ import annotations

import email.utils
import socket
import zlib

import httpx
import pytest
from tests.fakes.llm import (
    SCRIPTED_API_KEY,
    ScriptedModel,
    ScriptedModelServer,
    Status,
    Stream,
    hang,
    make_llm_config,
    rate_limited,
    reply,
    scripted_llm_client,
    server_error,
)

from auto_review.errors import (
    ConfigError,
    LLMBudgetExhausted,
    LLMError,
    LLMRateLimited,
    LLMUnavailable,
)
from auto_review.llm import (
    MAX_RESPONSE_BYTES,
    MAX_RESPONSE_CONTAINERS,
    Message,
    RetryPolicy,
    Tier,
    UsageLedger,
)
from auto_review.settings import LLMConfig

pytestmark = pytest.mark.anyio

HELLO = [Message("system", "be brief"), Message("user", "hello")]


async def test_chat_sends_model_messages_temperature_zero_and_max_tokens(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(reply("hi", prompt_tokens=5, completion_tokens=2))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        completion = await client.chat(Tier.CHEAP, HELLO, max_tokens=77)
    assert completion.text == "hi"
    assert completion.model == "scripted-cheap"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 2)
    body = scripted_model.chat_requests[0].body
    assert body["model"] == "scripted-cheap"
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
    ]
    assert body["temperature"] == 0
    assert body["max_tokens"] == 77
    assert "response_format" not in body


async def test_chat_retries_429_after_exactly_the_retry_after_seconds(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(rate_limited(retry_after=3), reply("done"))
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        completion = await client.chat(Tier.REASONING, HELLO)
    assert completion.text == "done"
    assert sleeps.calls == [3.0]
    assert len(scripted_model.chat_requests) == 2


async def test_chat_honours_a_retry_after_given_as_an_http_date(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    now = 1_800_000_000.0
    when = email.utils.formatdate(now + 12, usegmt=True)
    scripted_model.script(rate_limited(retry_after=when), reply("done"))
    async with scripted_llm_client(scripted_llm_config, clock=lambda: now) as (client, sleeps):
        await client.chat(Tier.REASONING, HELLO)
    assert sleeps.calls == [12.0]


async def test_chat_refuses_to_wait_for_a_retry_after_beyond_the_policy_cap(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(rate_limited(retry_after=3600))
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        with pytest.raises(LLMRateLimited) as caught:
            await client.chat(Tier.REASONING, HELLO)
    assert caught.value.retry_after == 3600
    assert caught.value.transient
    assert sleeps.calls == []


async def test_chat_backs_off_with_capped_jittered_delays_on_429_without_retry_after(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(*[rate_limited(retry_after=None)] * 4)
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
    async with scripted_llm_client(scripted_llm_config, retry=policy, jitter=lambda: 0.0) as (
        client,
        sleeps,
    ):
        with pytest.raises(LLMRateLimited):
            await client.chat(Tier.REASONING, HELLO)
    # base * 2**n, capped at 3, scaled by the jitter factor (0.5 at jitter 0).
    assert sleeps.calls == [0.5, 1.0, 1.5]


async def test_chat_retries_500_then_raises_llm_unavailable(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(*[server_error()] * 4)
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        with pytest.raises(LLMUnavailable) as caught:
            await client.chat(Tier.REASONING, HELLO)
    assert caught.value.status == 500
    assert len(scripted_model.chat_requests) == 4
    assert sleeps.calls == [1.0, 2.0, 4.0]


async def test_chat_recovers_when_a_500_is_followed_by_an_answer(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(server_error(503), reply("ok"))
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        assert (await client.chat(Tier.REASONING, HELLO)).text == "ok"
    assert len(sleeps.calls) == 1


async def test_chat_times_out_a_hung_call_retries_and_raises_llm_unavailable(
    scripted_model: ScriptedModel, scripted_model_server: ScriptedModelServer
) -> None:
    config = make_llm_config(scripted_model_server.base_url, timeout_secs=0.2)
    scripted_model.script(hang(), hang(), hang())
    policy = RetryPolicy(max_attempts=3)
    async with scripted_llm_client(config, retry=policy) as (client, sleeps):
        with pytest.raises(LLMUnavailable, match=r"did not answer within 0\.2s") as caught:
            await client.chat(Tier.REASONING, HELLO)
    # Whichever fires first: httpx's read timeout or the deadline on the whole answer.
    assert isinstance(caught.value.__cause__, httpx.TimeoutException | TimeoutError)
    assert len(scripted_model.chat_requests) == 3
    assert len(sleeps.calls) == 2


async def test_chat_per_call_timeout_overrides_the_configured_one(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(hang())
    policy = RetryPolicy(max_attempts=1)
    async with scripted_llm_client(scripted_llm_config, retry=policy) as (client, _):
        with pytest.raises(LLMUnavailable, match=r"within 0\.1s"):
            await client.chat(Tier.REASONING, HELLO, timeout_secs=0.1)


async def test_chat_maps_a_refused_connection_to_llm_unavailable_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    config = make_llm_config(f"http://127.0.0.1:{port}")
    async with scripted_llm_client(config) as (client, sleeps):
        with pytest.raises(LLMUnavailable, match="cannot reach") as caught:
            await client.chat(Tier.REASONING, HELLO)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sleeps.calls) == 3


async def test_chat_sends_the_api_key_as_a_bearer_token(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.require_key = SCRIPTED_API_KEY
    scripted_model.script(reply("ok"))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        assert (await client.chat(Tier.REASONING, HELLO)).text == "ok"
    (request,) = scripted_model.chat_requests
    assert request.auth_scheme == "Bearer"
    assert request.key_ok is True


async def test_chat_refused_key_is_not_retried_and_the_key_never_appears_in_the_error(
    scripted_model: ScriptedModel, scripted_model_server: ScriptedModelServer
) -> None:
    scripted_model.require_key = "sk-the-right-key-which-differs-000000"
    config = make_llm_config(scripted_model_server.base_url)
    async with scripted_llm_client(config) as (client, sleeps):
        with pytest.raises(LLMError) as caught:
            await client.chat(Tier.REASONING, HELLO)
    assert caught.value.status == 401
    assert not caught.value.transient
    assert "refused the API key" in str(caught.value)
    assert SCRIPTED_API_KEY not in str(caught.value)
    assert sleeps.calls == []


async def test_chat_error_text_is_truncated_and_scrubbed_of_an_echoed_key(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(
        server_error(400, f"bad request with key {SCRIPTED_API_KEY} " + "x" * 5000)
    )
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        with pytest.raises(LLMError) as caught:
            await client.chat(Tier.REASONING, HELLO)
    message = str(caught.value)
    assert caught.value.status == 400
    assert SCRIPTED_API_KEY not in message
    assert "[REDACTED]" in message
    assert len(message) < 500


async def test_chat_without_a_key_sends_no_authorization_header(
    scripted_model: ScriptedModel, scripted_model_server: ScriptedModelServer
) -> None:
    scripted_model.script(reply("ok"))
    config = make_llm_config(scripted_model_server.base_url, api_key=None)
    async with scripted_llm_client(config) as (client, _):
        await client.chat(Tier.REASONING, HELLO)
    assert scripted_model.chat_requests[0].auth_scheme is None


async def test_chat_accepts_a_base_url_that_already_ends_in_v1(
    scripted_model: ScriptedModel, scripted_model_server: ScriptedModelServer
) -> None:
    scripted_model.script(reply("ok"))
    config = make_llm_config(scripted_model_server.base_url + "/v1/")
    async with scripted_llm_client(config) as (client, _):
        await client.chat(Tier.REASONING, HELLO)
    assert scripted_model.chat_requests[0].path == "/v1/chat/completions"


async def test_chat_on_an_unconfigured_tier_raises_config_error_naming_the_variable(
    scripted_model_server: ScriptedModelServer,
) -> None:
    config = make_llm_config(scripted_model_server.base_url, cheap=False)
    async with scripted_llm_client(config) as (client, _):
        assert client.has_tier(Tier.REASONING)
        assert not client.has_tier(Tier.CHEAP)
        with pytest.raises(ConfigError, match="LLM_CHEAP_MODEL"):
            await client.chat(Tier.CHEAP, HELLO)


async def test_chat_does_not_retry_a_404_and_raises_llm_error(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(server_error(404, "model 'scripted-reasoning' not found"))
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        with pytest.raises(LLMError, match="not found") as caught:
            await client.chat(Tier.REASONING, HELLO)
    assert caught.value.status == 404
    assert sleeps.calls == []


async def test_chat_rejects_a_200_answer_without_choices_as_llm_error(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(Status(200, "not a chat completion"))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        with pytest.raises(LLMError, match="without choices"):
            await client.chat(Tier.REASONING, HELLO)


async def test_with_ledger_shares_the_transport_but_records_separately(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(reply("a", prompt_tokens=10, completion_tokens=1), reply("b"))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        review = client.with_ledger(UsageLedger())
        await review.chat(Tier.REASONING, HELLO)
        await client.chat(Tier.REASONING, HELLO)
    assert review.ledger.totals().prompt_tokens == 10
    assert review.ledger.totals().calls == 1
    assert client.ledger.totals().calls == 1


async def test_chat_error_text_never_keeps_a_key_prefix_where_the_cut_falls_inside_it(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(server_error(400, "y" * 280 + SCRIPTED_API_KEY))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        with pytest.raises(LLMError) as caught:
            await client.chat(Tier.REASONING, HELLO)
    assert SCRIPTED_API_KEY[:12] not in str(caught.value)


async def test_chat_falls_back_to_backoff_when_retry_after_is_unreadable(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    scripted_model.script(rate_limited(retry_after="soon"), reply("ok"))
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        assert (await client.chat(Tier.REASONING, HELLO)).text == "ok"
    assert sleeps.calls == [1.0]  # base delay at jitter 1.0


async def test_chat_honours_retry_after_on_a_503_while_the_model_loads(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    loading = Status(503, "model is loading", {"Retry-After": "5"})
    scripted_model.script(loading, reply("ok"))
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        assert (await client.chat(Tier.REASONING, HELLO)).text == "ok"
    assert sleeps.calls == [5.0]


# -- a hostile or broken provider: bounded bytes, time and numbers ------------------------------

_MIB = 1024 * 1024


async def test_chat_stops_reading_a_flooding_answer_at_the_body_cap(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    # 1 GiB of JSON whitespace: nothing but memory would stop a client that reads it all.
    flood = Stream(b" " * _MIB, 1024, prefix=b'{"choices": [')
    scripted_model.script(flood)
    async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
        with pytest.raises(LLMError, match="more than") as caught:
            await client.chat(Tier.REASONING, HELLO)
    assert not isinstance(caught.value, LLMUnavailable | LLMRateLimited)
    assert sleeps.calls == []  # a flood is not transient: not asked for again
    assert len(scripted_model.chat_requests) == 1
    assert flood.chunks_sent <= MAX_RESPONSE_BYTES // _MIB + 64  # the cap plus socket buffers


async def test_chat_caps_a_compressed_answer_by_its_decoded_size(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    # 256 MiB of zeros gzip to a quarter MiB: a cap on the wire size alone would let it in.
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(packer.compress(bytes(_MIB)) for _ in range(256)) + packer.flush()
    assert len(bomb) < MAX_RESPONSE_BYTES // 8
    scripted_model.script(Stream(b"", 0, prefix=bomb, headers={"Content-Encoding": "gzip"}))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        with pytest.raises(LLMError, match="more than"):
            await client.chat(Tier.REASONING, HELLO)


async def test_chat_deadline_covers_the_whole_answer_not_each_read(
    scripted_model: ScriptedModel, scripted_model_server: ScriptedModelServer
) -> None:
    # One byte every 0.2 s keeps each read far inside the 1 s timeout; the answer would take
    # 30 s. Only a deadline on the whole call ends it: the count proves it stopped early.
    config = make_llm_config(scripted_model_server.base_url, timeout_secs=1.0)
    drip = Stream(b" ", 150, delay_secs=0.2, prefix=b'{"choices": [')
    scripted_model.script(drip)
    retry = RetryPolicy(max_attempts=1)
    async with scripted_llm_client(config, retry=retry) as (client, _):
        with pytest.raises(LLMUnavailable, match="within 1s"):
            await client.chat(Tier.REASONING, HELLO)
    assert drip.chunks_sent < 150 // 2


async def test_chat_maps_deeply_nested_json_from_the_endpoint_to_llm_error(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    # 5,000 nested arrays: 10 KB, under every size bound, and deeper than the parser can go.
    bomb = b'{"choices": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    scripted_model.script(Stream(b"", 0, prefix=bomb))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        with pytest.raises(LLMError, match="nest"):
            await client.chat(Tier.REASONING, HELLO)


async def test_chat_refuses_an_answer_of_many_tiny_containers_before_parsing_it(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    # A valid answer padded with empty arrays: 3 bytes each on the wire, ~75 bytes each parsed.
    # Under the byte cap, it would cost the parser ~25 times its size.
    padding = b",".join([b"[]"] * (MAX_RESPONSE_CONTAINERS + 1))
    body = b'{"choices": [{"message": {"content": "hi"}}], "pad": [' + padding + b"]}"
    assert len(body) < MAX_RESPONSE_BYTES
    scripted_model.script(Stream(b"", 0, prefix=body))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        with pytest.raises(LLMError, match="arrays and objects"):
            await client.chat(Tier.REASONING, HELLO)
    # Positive control: an honest answer far under the bound still parses.
    scripted_model.script(reply("[{}] " * 1000))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        assert (await client.chat(Tier.REASONING, HELLO)).text.startswith("[{}]")


@pytest.mark.parametrize("reported", [10**400, 10**19, -5, True])
async def test_chat_does_not_believe_impossible_token_counts(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig, reported: int
) -> None:
    # A count past 2**63 cannot be stored in the history (SQLite INTEGER) and one past ~1e308
    # cannot be priced (float overflow); a negative one would make a paid call free. The
    # client's own size estimate is recorded instead, as when the endpoint sends no usage.
    scripted_model.script(reply("hi", prompt_tokens=reported, completion_tokens=reported))
    async with scripted_llm_client(scripted_llm_config) as (client, _):
        completion = await client.chat(Tier.REASONING, HELLO)
    usage = completion.usage
    assert 0 < usage.prompt_tokens < 100
    assert 0 < usage.completion_tokens < 100
    assert client.ledger.totals().prompt_tokens == usage.prompt_tokens


async def test_a_per_review_client_stops_at_its_chat_request_budget_retries_included(
    scripted_model: ScriptedModel, scripted_llm_config: LLMConfig
) -> None:
    # A model that answers 503 for ever: four attempts per call would go on call after call.
    scripted_model.respond_with(lambda _request: server_error(503))
    async with scripted_llm_client(scripted_llm_config) as (shared, _):
        review = shared.with_ledger(max_chat_requests=6)
        with pytest.raises(LLMUnavailable):
            await review.chat(Tier.REASONING, HELLO)  # 4 attempts, all counted
        with pytest.raises(LLMBudgetExhausted, match="6 chat requests"):
            await review.chat(Tier.REASONING, HELLO)  # 2 more attempts, then refused
        with pytest.raises(LLMBudgetExhausted):
            await review.chat(Tier.CHEAP, HELLO)  # refused before sending
        assert review.chat_requests_sent == 6
        assert len(scripted_model.chat_requests) == 6
        # The budget is the review's: the shared client and a next review are not charged.
        scripted_model.respond_with(None)
        scripted_model.script(reply("ok"), reply("ok"))
        assert (await shared.chat(Tier.REASONING, HELLO)).text == "ok"
        assert (await shared.with_ledger(max_chat_requests=1).chat(Tier.CHEAP, HELLO)).text == "ok"
    assert not LLMBudgetExhausted.transient

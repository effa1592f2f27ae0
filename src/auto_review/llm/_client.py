"""Transport to OpenAI-compatible endpoints (Ollama, vLLM, llama.cpp, hosted APIs).

``LLMClient`` sends one chat or embedding request per call to the tier's endpoint with an
explicit timeout, ``temperature`` 0 and ``max_tokens``, retries transient failures (429 honouring
``Retry-After``, 5xx, timeouts, connection errors) per ``RetryPolicy``, records token usage in
its ``UsageLedger``, and maps every failure once to the ``LLMError`` family:

    LLMRateLimited   429 after the last attempt, or a Retry-After longer than we wait
    LLMUnavailable   5xx, 408, timeout or connection failure after the last attempt (a 503's
                     Retry-After is honoured like a 429's)
    LLMError         any other status (400 schema rejected, 401 key refused, 404 no model) or
                     a response that is not an OpenAI-shaped JSON document; not retried

The constructor reads the price table (``AR_PRICE_TABLE_PATH``) unless one is passed, and raises
``ConfigError`` if that file is bad, so the mistake surfaces at startup.

This is the only module that sees httpx exceptions. Error messages carry at most
``MAX_QUOTED_BODY`` (``_answer``) characters of the endpoint's body, with every configured API
key removed, and never a request header.

The endpoint is not trusted to be well behaved. Each attempt has one deadline for the whole
exchange (connect, send, every read), so a body dripped a byte at a time cannot hold a worker
past it; an answer is read up to ``MAX_RESPONSE_BYTES`` after decompression and no further (a
flood or a gzip bomb is refused, not retried); JSON nested too deep to parse, and token counts
that cannot be true, are treated as the malformed answers they are.

Endpoint URLs: ``{base_url}/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/models``; a base
URL that already ends in ``/v1`` is used as is (both spellings are common in operator docs).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import httpx

from auto_review import __version__
from auto_review.errors import (
    ConfigError,
    LLMBudgetExhausted,
    LLMError,
    LLMRateLimited,
    LLMUnavailable,
)
from auto_review.llm._answer import (
    MAX_QUOTED_BODY,
    decode_json,
    parse_chat,
    parse_embeddings,
    parse_usage,
    read_capped,
)
from auto_review.llm._tokens import estimate_tokens
from auto_review.llm._types import Completion, Message, RetryPolicy, Tier, TokenUsage
from auto_review.llm._usage import PriceTable, UsageLedger, load_price_table
from auto_review.logs import get_logger
from auto_review.settings import LLMConfig, LLMTierConfig

__all__ = ["LLMClient", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]

_CONNECT_TIMEOUT_SECS = 10.0
_log = get_logger("llm")

_ENV_FOR_TIER = {
    Tier.REASONING: "LLM_REASONING_MODEL",
    Tier.CHEAP: "LLM_CHEAP_MODEL",
    Tier.EMBEDDING: "LLM_EMBEDDING_MODEL",
}


class LLMClient:
    """Calls the configured tiers. Share one per process; ``with_ledger`` gives per-job views."""

    def __init__(
        self,
        config: LLMConfig,
        http: httpx.AsyncClient,
        *,
        ledger: UsageLedger | None = None,
        prices: PriceTable | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        max_chat_requests: int | None = None,
    ) -> None:
        self._config = config
        # Chat requests this client may still send (retries included); None: no budget. Per
        # review (``with_ledger``), so repairs, verifier turns and retries have one ceiling
        # however the model answers.
        self._chat_budget = max_chat_requests
        self._chat_sent = 0
        self._http = http
        # The operator's price file is read once here, so a bad one fails at startup.
        self._prices = prices if prices is not None else load_price_table(config.price_table_path)
        self._ledger = ledger if ledger is not None else UsageLedger(self._prices)
        self._retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._secrets = tuple(
            t.api_key.get_secret_value()
            for t in (config.reasoning, config.cheap, config.embedding)
            if t is not None and t.api_key is not None and t.api_key.get_secret_value()
        )

    @property
    def config(self) -> LLMConfig:
        return self._config

    @property
    def ledger(self) -> UsageLedger:
        return self._ledger

    @property
    def prices(self) -> PriceTable:
        return self._prices

    @property
    def chat_requests_sent(self) -> int:
        """Chat requests this client sent (each retry counts)."""
        return self._chat_sent

    def with_ledger(
        self, ledger: UsageLedger | None = None, *, max_chat_requests: int | None = None
    ) -> LLMClient:
        """A client sharing this one's connection pool that records into ``ledger``.

        Without an argument the new ledger is empty and uses this client's price table: call
        ``llm.with_ledger()`` once per review and read ``.ledger.totals()`` at the end.
        ``max_chat_requests`` gives the new client its own budget of chat requests; past it,
        ``chat`` raises ``LLMBudgetExhausted`` without sending.
        """
        return LLMClient(
            self._config,
            self._http,
            ledger=ledger if ledger is not None else UsageLedger(self._prices),
            prices=self._prices,
            retry=self._retry,
            sleep=self._sleep,
            jitter=self._jitter,
            clock=self._clock,
            max_chat_requests=max_chat_requests,
        )

    def has_tier(self, tier: Tier) -> bool:
        """Whether ``tier`` is configured (reasoning always is)."""
        return self._tier_or_none(tier) is not None

    def tier_config(self, tier: Tier) -> LLMTierConfig:
        """The tier's endpoint and model; ``ConfigError`` naming the variable if it is unset."""
        found = self._tier_or_none(tier)
        if found is None:
            raise ConfigError(
                f"the {tier.value} model tier is not configured (set {_ENV_FOR_TIER[tier]})"
            )
        return found

    def _tier_or_none(self, tier: Tier) -> LLMTierConfig | None:
        if tier is Tier.REASONING:
            return self._config.reasoning
        if tier is Tier.CHEAP:
            return self._config.cheap
        return self._config.embedding

    # -- calls ----------------------------------------------------------------------------------

    async def chat(
        self,
        tier: Tier,
        messages: Sequence[Message],
        *,
        response_format: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        timeout_secs: float | None = None,
    ) -> Completion:
        """One chat completion at temperature 0; raises the ``LLMError`` family."""
        if tier is Tier.EMBEDDING:
            raise ValueError("the embedding tier does not answer chat requests")
        cfg = self.tier_config(tier)
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": 0,
            "max_tokens": max_tokens or self._config.max_output_tokens,
            "stream": False,
        }
        if response_format is not None:
            body["response_format"] = dict(response_format)
        data = await self._post(cfg, "chat/completions", body, timeout_secs, counted=True)
        text, finish_reason = parse_chat(data)
        usage = parse_usage(data)
        if usage is None:
            # Some servers omit usage; an estimate keeps budgets and cost honest-ish.
            prompt = sum(estimate_tokens(m.content) for m in messages)
            usage = TokenUsage(prompt, estimate_tokens(text))
        self._ledger.record(tier, cfg.base_url, cfg.model, usage)
        return Completion(
            text=text, tier=tier, model=cfg.model, usage=usage, finish_reason=finish_reason
        )

    async def embedding_request(
        self, inputs: Sequence[str], *, timeout_secs: float | None = None
    ) -> tuple[list[list[float]], TokenUsage]:
        """One ``/v1/embeddings`` request (no batching, see ``embed``); vectors in input order."""
        cfg = self.tier_config(Tier.EMBEDDING)
        body: dict[str, Any] = {"model": cfg.model, "input": list(inputs)}
        if self._config.embed_num_ctx is not None:
            body["options"] = {"num_ctx": self._config.embed_num_ctx}  # Ollama's context size
        data = await self._post(cfg, "embeddings", body, timeout_secs)
        vectors = parse_embeddings(data, len(inputs))
        usage = parse_usage(data) or TokenUsage(sum(estimate_tokens(t) for t in inputs), 0)
        self._ledger.record(Tier.EMBEDDING, cfg.base_url, cfg.model, usage)
        return vectors, usage

    async def list_models(self, tier: Tier, *, timeout_secs: float) -> tuple[str, ...]:
        """The model ids ``GET /v1/models`` lists at the tier's endpoint; one try, no retry."""
        cfg = self.tier_config(tier)
        response, raw = await self._exchange(cfg, "GET", "models", None, timeout_secs)
        if response.status_code != 200:
            self._raise_status(response, raw)
        data = decode_json(raw, self._scrub)
        items = data.get("data")
        if not isinstance(items, list):
            raise LLMError("model endpoint answered /v1/models without a data list")
        return tuple(str(i["id"]) for i in items if isinstance(i, dict) and "id" in i)

    # -- transport --------------------------------------------------------------------------------

    async def _post(
        self,
        cfg: LLMTierConfig,
        path: str,
        body: Mapping[str, Any],
        timeout_secs: float | None,
        *,
        counted: bool = False,
    ) -> dict[str, Any]:
        seconds = timeout_secs if timeout_secs is not None else self._config.timeout_secs
        attempt = 1
        while True:
            if counted:
                self._spend_chat_request()
            try:
                response, raw = await self._exchange(cfg, "POST", path, body, seconds)
                if response.status_code != 200:
                    self._raise_status(response, raw)
                return decode_json(raw, self._scrub)
            except (LLMRateLimited, LLMUnavailable) as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
                _log.warning(
                    "model call failed, retrying",
                    tier=cfg.tier,
                    model=cfg.model,
                    attempt=attempt,
                    status=exc.status,
                    delay_secs=round(delay, 3),
                    error=exc.message,
                )
                await self._sleep(delay)
                attempt += 1

    async def _exchange(
        self,
        cfg: LLMTierConfig,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        seconds: float,
    ) -> tuple[httpx.Response, bytes]:
        """One request and its answer's bytes, all within ``seconds``."""
        try:
            # httpx's timeout bounds each read, not their sum: a provider sending a byte every
            # few seconds would never trip it. This deadline covers the whole exchange.
            async with asyncio.timeout(seconds):
                with _translating(cfg, seconds):
                    request = self._http.build_request(
                        method,
                        _url(cfg.base_url, path),
                        json=body,
                        headers=_headers(cfg),
                        timeout=_timeout(seconds),
                    )
                    response = await self._http.send(request, stream=True)
                    try:
                        raw = await read_capped(response)
                    finally:
                        await response.aclose()
        except TimeoutError as exc:
            raise LLMUnavailable(
                f"the {cfg.tier} model {cfg.model!r} did not answer within {seconds:g}s "
                "(the whole answer)"
            ) from exc
        return response, raw

    def _spend_chat_request(self) -> None:
        if self._chat_budget is not None and self._chat_sent >= self._chat_budget:
            raise LLMBudgetExhausted(
                f"this review already sent its {self._chat_budget} chat requests to the model"
            )
        self._chat_sent += 1

    def _retry_delay(self, exc: LLMError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up now."""
        if attempt >= self._retry.max_attempts:
            return None
        retry_after = exc.retry_after if isinstance(exc, LLMRateLimited | LLMUnavailable) else None
        if retry_after is not None:
            return None if retry_after > self._retry.max_retry_after else retry_after
        backoff = min(self._retry.max_delay, self._retry.base_delay * 2.0 ** (attempt - 1))
        return backoff * (0.5 + 0.5 * self._jitter())

    def _raise_status(self, response: httpx.Response, raw: bytes) -> NoReturn:
        status = response.status_code
        detail = self._error_detail(raw)
        # RFC 9110 10.2.3: Retry-After may accompany 429 and 503 (e.g. a model still loading).
        retry_after = _retry_after(response.headers.get("retry-after"), self._clock())
        if status == 429:
            raise LLMRateLimited(
                f"model endpoint rate-limited the call (429): {detail}", retry_after=retry_after
            )
        if status >= 500 or status == 408:
            raise LLMUnavailable(
                f"model endpoint failed ({status}): {detail}",
                status=status,
                retry_after=retry_after,
            )
        if status in (401, 403):
            raise LLMError(
                f"model endpoint refused the API key ({status}): {detail}", status=status
            )
        raise LLMError(f"model endpoint rejected the request ({status}): {detail}", status=status)

    def _error_detail(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            error = parsed.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                text = error["message"]
            elif isinstance(error, str):
                text = error
        # Scrub before cutting: a cut through a key would leave a prefix the scrub cannot see.
        return " ".join(self._scrub(text).split())[:MAX_QUOTED_BODY] or "(empty body)"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text


@contextlib.contextmanager
def _translating(cfg: LLMTierConfig, seconds: float) -> Iterator[None]:
    """Map httpx's exceptions to the ``LLMError`` family, chaining the cause."""
    where = f"{cfg.tier} model {cfg.model!r}"
    try:
        yield
    except httpx.TimeoutException as exc:
        raise LLMUnavailable(
            f"the {where} did not answer within {seconds:g}s ({type(exc).__name__})"
        ) from exc
    except httpx.TransportError as exc:
        raise LLMUnavailable(f"cannot reach the {where} ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise LLMError(f"HTTP error calling the {where} ({type(exc).__name__})") from exc


def _timeout(seconds: float) -> httpx.Timeout:
    # A dead host should fail fast even when generation may legitimately take minutes.
    return httpx.Timeout(seconds, connect=min(seconds, _CONNECT_TIMEOUT_SECS))


def _url(base_url: str, path: str) -> str:
    base = base_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return f"{base}/{path}"


def _headers(cfg: LLMTierConfig) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": f"auto-review/{__version__}"}
    if cfg.api_key is not None and cfg.api_key.get_secret_value():
        headers["Authorization"] = f"Bearer {cfg.api_key.get_secret_value()}"
    return headers


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date, RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)

"""An OpenAI-compatible endpoint's answer: read within bounds, then parsed, never trusted.

An answer is read up to ``MAX_RESPONSE_BYTES`` after decompression (a flood or a gzip bomb is
refused), holds at most ``MAX_RESPONSE_CONTAINERS`` JSON arrays and objects (counted before
parsing), may not nest deeper than the parser can go, and token counts above
``MAX_TOKENS_REPORTED`` or below 0 are not believed. Every failure is an ``LLMError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

import httpx

from auto_review.errors import LLMError
from auto_review.llm._types import TokenUsage

__all__ = ["MAX_RESPONSE_BYTES", "MAX_RESPONSE_CONTAINERS", "MAX_TOKENS_REPORTED"]

# Largest answer read into memory, counted after Content-Encoding is undone. The biggest honest
# answer is a batch of embeddings (32 texts x 4,096 floats is about 3 MiB as JSON); a chat answer
# is bounded by max_tokens. More than this is a broken or hostile endpoint. Parsed, 16 MiB of
# numbers costs Python ~180 MiB.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# Most '[' and '{' an answer may hold (counted in the raw bytes, strings included). Empty arrays
# and objects cost the parser ~25 times their size (16 MiB of "[]," peaks at ~400 MiB), where an
# honest answer has a handful of containers plus one per embedding.
MAX_RESPONSE_CONTAINERS = 100_000
# A token count above this for one call is not believed: no model has a context this large, the
# history stores counts as SQLite INTEGERs (< 2**63), and pricing multiplies them as floats.
MAX_TOKENS_REPORTED = 100_000_000
MAX_QUOTED_BODY = 300  # characters of a non-JSON answer quoted in the error


async def read_capped(response: httpx.Response) -> bytes:
    # aiter_bytes undoes Content-Encoding, so the cap counts what would land in memory.
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise LLMError(f"model endpoint answered with more than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(raw: bytes, scrub: Callable[[str], str]) -> dict[str, Any]:
    """The answer's JSON object; ``LLMError`` for anything else (``scrub`` cleans the quote)."""
    if raw.count(b"[") + raw.count(b"{") > MAX_RESPONSE_CONTAINERS:
        raise LLMError(
            f"model endpoint answered with more than {MAX_RESPONSE_CONTAINERS} JSON arrays "
            "and objects"
        )
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise LLMError("model endpoint answered with JSON nested too deep to parse") from exc
    except ValueError as exc:
        text = raw.decode("utf-8", "replace")
        raise LLMError(
            f"model endpoint answered with a body that is not JSON: "
            f"{scrub(text)[:MAX_QUOTED_BODY]!r}"
        ) from exc
    if not isinstance(data, dict):
        raise LLMError("model endpoint answered with JSON that is not an object")
    return data


def parse_chat(data: Mapping[str, Any]) -> tuple[str, str | None]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LLMError("model endpoint answered without choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    finish = choices[0].get("finish_reason")
    return (content if isinstance(content, str) else ""), (
        finish if isinstance(finish, str) else None
    )


def parse_usage(data: Mapping[str, Any]) -> TokenUsage | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens", 0)
    if not (_plausible_count(prompt) and _plausible_count(completion)):
        # Not believed, so not recorded: the caller estimates, as for an answer without usage.
        # A negative count would make a paid call look free; a huge one breaks the history's
        # INTEGER column and float pricing.
        return None
    return TokenUsage(prompt, completion)


def _plausible_count(value: object) -> TypeGuard[int]:
    # bool is an int subclass; JSON true is not a count.
    return (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS_REPORTED
    )


def parse_embeddings(data: Mapping[str, Any], expected: int) -> list[list[float]]:
    items = data.get("data")
    if not isinstance(items, list) or len(items) != expected:
        raise LLMError("model endpoint returned no or the wrong number of embeddings")
    # Endpoints may return items out of order; "index" says where each belongs.
    ordered: list[list[float] | None] = [None] * expected
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("embedding"), list):
            raise LLMError("model endpoint returned a malformed embedding")
        index = item.get("index", position)
        if not isinstance(index, int) or not 0 <= index < expected or ordered[index] is not None:
            raise LLMError("model endpoint returned embeddings with bad indexes")
        try:
            ordered[index] = [float(x) for x in item["embedding"]]
        except (TypeError, ValueError) as exc:
            raise LLMError("model endpoint returned an embedding that is not numbers") from exc
    return [v for v in ordered if v is not None]

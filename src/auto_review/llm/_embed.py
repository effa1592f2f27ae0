"""Embeddings in batches: ``embed(client, texts)`` for retrieval and learnings.

Texts are sent ``LLMConfig.embed_batch_size`` per request, in order. A text longer than
``LLMConfig.embed_input_cap_bytes`` UTF-8 bytes is cut at a character boundary before sending
(an embedding of the first few KiB represents a chunk well enough; sending more would fail on
small-context embedding models); ``Embeddings.truncated`` counts those. Empty input makes no call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from auto_review.llm._client import LLMClient
from auto_review.llm._types import Tier, TokenUsage

__all__ = ["Embeddings", "embed"]


@dataclass(frozen=True)
class Embeddings:
    """One vector per input text, in input order, plus what the calls cost."""

    vectors: tuple[tuple[float, ...], ...]
    usage: TokenUsage
    truncated: int
    model: str


async def embed(
    client: LLMClient, texts: Sequence[str], *, timeout_secs: float | None = None
) -> Embeddings:
    """Embed ``texts`` with the embedding tier; ``ConfigError`` if that tier is not configured."""
    config = client.config
    model = client.tier_config(Tier.EMBEDDING).model
    cap = config.embed_input_cap_bytes
    batch_size = max(1, config.embed_batch_size)
    prepared = [_cap_utf8(text, cap) for text in texts]
    truncated = sum(1 for text, capped in zip(texts, prepared, strict=True) if capped != text)
    vectors: list[tuple[float, ...]] = []
    usage = TokenUsage()
    for start in range(0, len(prepared), batch_size):
        batch = prepared[start : start + batch_size]
        got, batch_usage = await client.embedding_request(batch, timeout_secs=timeout_secs)
        vectors.extend(tuple(v) for v in got)
        usage = usage + batch_usage
    return Embeddings(vectors=tuple(vectors), usage=usage, truncated=truncated, model=model)


def _cap_utf8(text: str, cap: int) -> str:
    encoded = text.encode()
    if len(encoded) <= cap:
        return text
    # errors="ignore" drops the partial character the byte cut may leave at the end.
    return encoded[:cap].decode(errors="ignore")

"""Value types shared by the model client's modules: tiers, messages, completions, retry policy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["Completion", "Message", "RetryPolicy", "Tier", "TokenUsage"]


class Tier(StrEnum):
    """Which configured model a call goes to.

    ``REASONING`` is mandatory (reviews, self-heal); ``CHEAP`` (verification, chat) and
    ``EMBEDDING`` (retrieval, learnings) are optional: check ``LLMClient.has_tier`` first.
    """

    REASONING = "reasoning"
    CHEAP = "cheap"
    EMBEDDING = "embedding"


Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True)
class TokenUsage:
    """Tokens one call (or a sum of calls) consumed, as the endpoint reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """The text of ``choices[0]`` plus what the call cost."""

    text: str
    tier: Tier
    model: str
    usage: TokenUsage
    finish_reason: str | None  # "length" means max_tokens cut the answer off

    @property
    def truncated(self) -> bool:
        """Whether ``max_tokens`` cut the answer off."""
        return self.finish_reason == "length"


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures (429, 5xx, timeouts, connection errors) are retried.

    ``max_attempts`` counts the first try. The delay before retry *n* (1-based) is
    ``min(max_delay, base_delay * 2**(n-1))`` scaled by a random factor in [0.5, 1.0] (jitter
    keeps many clients from retrying in lockstep), unless the endpoint sent ``Retry-After``
    (with a 429 or a 5xx): that is honoured exactly. A ``Retry-After`` longer than
    ``max_retry_after`` is not waited for: the call fails at once (``LLMRateLimited`` or
    ``LLMUnavailable``, with ``retry_after`` set) so the job can be rescheduled instead.
    """

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

"""The model layer: OpenAI-compatible client, tiers, structured output, usage and cost.

Quick use (one ``httpx.AsyncClient`` per process; one ``UsageLedger`` per review)::

    from auto_review.llm import (
        LLMClient, PromptBuilder, Tier, UNTRUSTED_DATA_RULE, complete_structured,
        estimate_tokens, embed, readiness,
    )

    base = LLMClient(config, http)      # config: settings.llm(); reads AR_PRICE_TABLE_PATH
    llm = base.with_ledger()            # a fresh UsageLedger for this review
    prompt = PromptBuilder().text("Review this.").untrusted("diff", diff).build()
    result = await complete_structured(
        llm, Tier.REASONING, system=SYSTEM + "\\n\\n" + UNTRUSTED_DATA_RULE,
        user=prompt.text, output_model=ReviewOutput,
    )
    result.value            # a validated ReviewOutput
    llm.ledger.totals()     # UsageTotals: per tier/model tokens, cost_usd, unpriced_models

Errors (``auto_review.errors``): ``LLMRateLimited`` / ``LLMUnavailable`` (transient, already
retried with backoff), ``LLMOutputInvalid`` (structured output still invalid after 3 attempts),
``LLMError`` (anything else: bad key, unknown model, schema rejected), ``ConfigError`` (asking
for a tier that is not configured: check ``has_tier`` for the optional cheap/embedding tiers).
"""

from auto_review.llm._answer import (
    MAX_RESPONSE_BYTES,
    MAX_RESPONSE_CONTAINERS,
    MAX_TOKENS_REPORTED,
)
from auto_review.llm._client import (
    LLMClient,
    Sleep,
)
from auto_review.llm._embed import Embeddings, embed
from auto_review.llm._readiness import Readiness, TierStatus, readiness
from auto_review.llm._schema import drop_injected_nulls, response_format_for, strict_json_schema
from auto_review.llm._structured import (
    DEFAULT_MAX_ATTEMPTS,
    Structured,
    complete_structured,
    extract_json,
)
from auto_review.llm._tokens import TOKEN_ESTIMATE_TOLERANCE, estimate_tokens, fits
from auto_review.llm._types import Completion, Message, RetryPolicy, Tier, TokenUsage
from auto_review.llm._usage import (
    Price,
    PriceTable,
    UsageEntry,
    UsageLedger,
    UsageTotals,
    load_price_table,
)
from auto_review.llm.prompting import (
    UNTRUSTED_DATA_RULE,
    FramedPrompt,
    PromptBuilder,
    frame_untrusted,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "MAX_RESPONSE_BYTES",
    "MAX_RESPONSE_CONTAINERS",
    "MAX_TOKENS_REPORTED",
    "TOKEN_ESTIMATE_TOLERANCE",
    "UNTRUSTED_DATA_RULE",
    "Completion",
    "Embeddings",
    "FramedPrompt",
    "LLMClient",
    "Message",
    "Price",
    "PriceTable",
    "PromptBuilder",
    "Readiness",
    "RetryPolicy",
    "Sleep",
    "Structured",
    "Tier",
    "TierStatus",
    "TokenUsage",
    "UsageEntry",
    "UsageLedger",
    "UsageTotals",
    "complete_structured",
    "drop_injected_nulls",
    "embed",
    "estimate_tokens",
    "extract_json",
    "fits",
    "frame_untrusted",
    "load_price_table",
    "readiness",
    "response_format_for",
    "strict_json_schema",
]

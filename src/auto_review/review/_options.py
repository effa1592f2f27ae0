"""``PipelineOptions``: the slice of ``Settings`` the review pipeline reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auto_review.review.findings import Severity
from auto_review.settings import Isolation, Settings

__all__ = ["PipelineOptions"]


@dataclass(frozen=True)
class PipelineOptions:
    bot_login: str = "auto-review"
    severity_floor: Severity = Severity.WARNING
    agentic_verifier: bool = False
    context_tokens: int = 32768
    max_output_tokens: int = 4096
    llm_timeout_secs: float = 120.0
    max_llm_calls: int = 6
    max_model_requests: int = 80
    clone_timeout_secs: float = 300.0
    clone_max_bytes: int = 1024 * 1024 * 1024
    show_cost: bool = True
    workspace_parent: Path | None = None
    report_errors: bool = False  # post the ``error`` status itself (no job queue behind it)
    isolation: Isolation = Isolation.FULL  # sandbox tier of clone and analysis jobs

    @classmethod
    def from_settings(cls, settings: Settings, *, report_errors: bool = False) -> PipelineOptions:
        return cls(
            bot_login=settings.bot_login,
            severity_floor=Severity(settings.severity_floor),
            agentic_verifier=settings.agentic_verifier,
            context_tokens=settings.llm_context_tokens,
            max_output_tokens=settings.llm_max_output_tokens,
            llm_timeout_secs=settings.llm_timeout_secs,
            max_llm_calls=settings.max_llm_calls,
            max_model_requests=settings.max_model_requests,
            clone_timeout_secs=float(settings.clone_timeout_secs),
            clone_max_bytes=settings.clone_max_bytes,
            show_cost=settings.review_cost_footer,
            report_errors=report_errors,
            isolation=settings.isolation,
        )

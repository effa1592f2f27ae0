"""The review pipeline: one module per stage; ``pipeline.py`` strings them together.

Public API::

    ReviewPipeline(options, host, llm, store, *, prices=None, workspace_factory=None,
                   on_egress_refused=None)
        .run(ReviewRequest) -> ReviewOutcome        (implements ReviewRunner)
        .prepare(ReviewRequest) -> PreparedReview | ReviewOutcome   (no posting)
    PipelineOptions.from_settings(settings, *, report_errors=False)
    LocalHost(root, *, base, isolation, home)      (``review local``)
    load_repo_config / parse_repo_config -> LoadedRepoConfig(config: RepoConfig, ...)
    parse_diff(text) -> tuple[FileDiff, ...];  render_file(FileDiff, new_lines=...)
    to_text / to_json / to_sarif (PreparedReview)

Exports are resolved on first use (PEP 562): sandboxed analysis children import
``auto_review.review.symbols``/``tools`` and must not pay for the whole pipeline (pydantic,
httpx, the model client) each time they start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auto_review.review._options import PipelineOptions
    from auto_review.review._request import (
        Outcome,
        ReviewOutcome,
        ReviewRequest,
        ReviewRunner,
        TierUsage,
        Trigger,
    )
    from auto_review.review._types import PreparedReview
    from auto_review.review.config import (
        LoadedRepoConfig,
        RepoConfig,
        load_repo_config,
        parse_repo_config,
    )
    from auto_review.review.diff import FileDiff, parse_diff, render_file
    from auto_review.review.local import LocalHost
    from auto_review.review.output import to_json, to_sarif, to_text
    from auto_review.review.pipeline import ReviewPipeline

_EXPORTS = {
    "FileDiff": "auto_review.review.diff",
    "LoadedRepoConfig": "auto_review.review.config",
    "LocalHost": "auto_review.review.local",
    "Outcome": "auto_review.review._request",
    "PipelineOptions": "auto_review.review._options",
    "PreparedReview": "auto_review.review._types",
    "RepoConfig": "auto_review.review.config",
    "ReviewOutcome": "auto_review.review._request",
    "ReviewPipeline": "auto_review.review.pipeline",
    "ReviewRequest": "auto_review.review._request",
    "ReviewRunner": "auto_review.review._request",
    "TierUsage": "auto_review.review._request",
    "Trigger": "auto_review.review._request",
    "load_repo_config": "auto_review.review.config",
    "parse_diff": "auto_review.review.diff",
    "parse_repo_config": "auto_review.review.config",
    "render_file": "auto_review.review.diff",
    "to_json": "auto_review.review.output",
    "to_sarif": "auto_review.review.output",
    "to_text": "auto_review.review.output",
}

__all__ = [
    "FileDiff",
    "LoadedRepoConfig",
    "LocalHost",
    "Outcome",
    "PipelineOptions",
    "PreparedReview",
    "RepoConfig",
    "ReviewOutcome",
    "ReviewPipeline",
    "ReviewRequest",
    "ReviewRunner",
    "TierUsage",
    "Trigger",
    "load_repo_config",
    "parse_diff",
    "parse_repo_config",
    "render_file",
    "to_json",
    "to_sarif",
    "to_text",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

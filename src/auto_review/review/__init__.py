"""The review pipeline: one module per stage; ``pipeline.py`` strings them together.

Public API::

    ReviewPipeline(options, host, llm, store, *, prices=None, workspace_factory=None)
        .run(ReviewRequest) -> ReviewOutcome        (implements ReviewRunner)
        .prepare(ReviewRequest) -> PreparedReview | ReviewOutcome   (no posting)
    PipelineOptions.from_settings(settings, *, report_errors=False)
    LocalHost(root, *, base, isolation, home)      (``review local``)
    load_repo_config / parse_repo_config -> LoadedRepoConfig(config: RepoConfig, ...)
    parse_diff(text) -> tuple[FileDiff, ...];  render_file(FileDiff, new_lines=...)
    to_text / to_json / to_sarif (PreparedReview)
"""

from auto_review.review._options import PipelineOptions
from auto_review.review._request import (
    Outcome,
    ReviewOutcome,
    ReviewRequest,
    ReviewRunner,
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
    "Trigger",
    "load_repo_config",
    "parse_diff",
    "parse_repo_config",
    "render_file",
    "to_json",
    "to_sarif",
    "to_text",
]

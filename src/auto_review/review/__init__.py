"""The review pipeline: one module per stage; ``pipeline.py`` strings them together."""

from auto_review.review._request import (
    Outcome,
    ReviewOutcome,
    ReviewRequest,
    ReviewRunner,
    Trigger,
)

__all__ = ["Outcome", "ReviewOutcome", "ReviewRequest", "ReviewRunner", "Trigger"]

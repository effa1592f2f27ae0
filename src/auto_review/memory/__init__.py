"""Repo-scoped memory: learnings, pauses of automatic reviews (review history joins here)."""

from auto_review.memory.learnings import (
    MAX_LEARNING_BYTES,
    MAX_LEARNINGS_PER_REPO,
    Learning,
    LearningsStore,
    clean_learning_text,
)
from auto_review.memory.pauses import is_paused, set_paused

__all__ = [
    "MAX_LEARNINGS_PER_REPO",
    "MAX_LEARNING_BYTES",
    "Learning",
    "LearningsStore",
    "clean_learning_text",
    "is_paused",
    "set_paused",
]

"""The error family of auto-review.

Every package raises subclasses of ``AutoReviewError``; foreign exceptions are translated at
exactly one boundary per package, with the original chained as ``__cause__``. Each class names the
process exit code the CLI uses, so ``cli/`` maps errors to exit codes in one place.

    AutoReviewError (exit 1)
     +-- ConfigError             a setting or a repository config file is invalid
     +-- StoreError              the SQLite state cannot be opened, migrated or used
     |    +-- StoreSchemaError   corrupt database or a schema newer than this build
     |    +-- LearningRejected   a learning is empty, too large, or its repository is full
     +-- HostError               the forge answered badly or not at all
     |    +-- HostAuthError      401/403: token missing, wrong or lacking a scope
     |    +-- HostNotFound       404
     |    +-- HostRateLimited    429 (``retry_after`` seconds, when the forge said)
     |    +-- HostUnavailable    5xx, timeouts, connection failures (transient)
     +-- LLMError                the model endpoint failed or its output was unusable
     |    +-- LLMRateLimited     429 (``retry_after``)
     |    +-- LLMUnavailable     5xx, timeouts, connection failures (transient)
     |    +-- LLMOutputInvalid   output still invalid after the repair attempts
     +-- JobError                a queued job cannot be run or changed
     +-- ReviewError             a review stage failed for a reason worth telling the PR author

The sandbox package imports nothing of the project, so its errors (``SandboxError`` and
subclasses, in ``auto_review.sandbox``) form a separate family with the same ``exit_code``
convention; ``cli/`` handles both.
"""

from __future__ import annotations

__all__ = [
    "AutoReviewError",
    "ConfigError",
    "HostAuthError",
    "HostError",
    "HostNotFound",
    "HostRateLimited",
    "HostUnavailable",
    "JobError",
    "LLMBudgetExhausted",
    "LLMError",
    "LLMOutputInvalid",
    "LLMRateLimited",
    "LLMUnavailable",
    "LearningRejected",
    "ReviewError",
    "StoreError",
    "StoreSchemaError",
]


class AutoReviewError(Exception):
    """Root of every error auto-review raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AutoReviewError):
    """Invalid configuration; ``problems`` lists every problem found, not just the first."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class StoreError(AutoReviewError):
    """The state database failed."""


class StoreSchemaError(StoreError):
    """The database is corrupt or was written by a newer auto-review."""


class LearningRejected(StoreError):
    """The learnings store refused a learning; the message is safe to show the user."""


class HostError(AutoReviewError):
    """The forge failed; ``status`` is the HTTP status when there was one."""

    transient: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HostAuthError(HostError):
    """The forge refused the token."""


class HostNotFound(HostError):
    """The forge has no such object."""


class HostRateLimited(HostError):
    """The forge asked us to slow down."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class HostUnavailable(HostError):
    """The forge is down, slow or unreachable; worth retrying (after ``retry_after`` if set)."""

    transient = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class LLMError(AutoReviewError):
    """The model endpoint failed."""

    transient: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LLMRateLimited(LLMError):
    """The model endpoint asked us to slow down."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class LLMUnavailable(LLMError):
    """The model endpoint is down, slow or unreachable; worth retrying (after ``retry_after``)."""

    transient = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class LLMOutputInvalid(LLMError):
    """The model's output did not match the schema after every repair attempt."""


class LLMBudgetExhausted(LLMError):
    """The review sent as many chat requests as it may; not retried (more would be the same)."""


class JobError(AutoReviewError):
    """A job cannot be queued, claimed or changed."""


class ReviewError(AutoReviewError):
    """A review stage failed."""

"""What the request handlers share: the injected dependencies, bundled once per app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from auto_review.gateway._metrics import GatewayMetrics
from auto_review.hosts import RepoRef, ReviewHost
from auto_review.jobs import ChatRunner, Clock, JobQueue, PrTracker, SystemClock
from auto_review.review import ReviewRunner
from auto_review.sandbox import Posture
from auto_review.store import Store

__all__ = [
    "GatewayDeps",
    "IsolationReport",
    "PostureProvider",
    "ReviewMode",
    "ReviewModeResolver",
    "bare_posture",
]

ReviewMode = Literal["ci", "direct"]
# Per-repository review mode from the repository's config at the PR's base commit; None = the
# repository does not say (the global AR_REVIEW_MODE applies).
ReviewModeResolver = Callable[[RepoRef, str], Awaitable[ReviewMode | None]]


@dataclass(frozen=True)
class IsolationReport:
    """What isolation is really in force, as read back by the sandbox (never a secret)."""

    tier: str  # full | restricted | none: the tier in force
    controls: Mapping[str, str]  # control name -> state: on | off | unavailable
    detail: str = ""
    tier_requested: str = ""  # what the operator asked for ("": the same as ``tier``)
    # control name -> why it is in that state, the sandbox's own words (host facts, no secret)
    reasons: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "tier_requested": self.tier_requested or self.tier,
            "controls": dict(self.controls),
            # Keyed exactly like ``controls``, so a reader can pair them without a lookup miss.
            "reasons": {name: self.reasons.get(name, "") for name in self.controls},
            "detail": self.detail,
        }

    @classmethod
    def from_posture(cls, posture: Posture) -> IsolationReport:
        """The report of a sandbox read-back (``auto_review.sandbox.Posture``)."""
        return cls(
            tier=posture.tier_effective,
            controls={c.name: c.state for c in posture.controls},
            detail=f"policy {posture.policy}; tier requested {posture.tier_requested}",
            tier_requested=posture.tier_requested,
            reasons={c.name: c.reason for c in posture.controls},
        )


class PostureProvider(Protocol):
    def __call__(self) -> IsolationReport: ...


def bare_posture() -> IsolationReport:
    """The posture of ``--bare``: application-level controls only."""
    controls = ("namespaces", "seccomp", "landlock", "no_new_privs", "rlimits")
    why = "bare mode (--bare or AR_ISOLATION=none): the gateway runs outside the sandbox"
    return IsolationReport(
        tier="none",
        controls=dict.fromkeys(controls, "off"),
        detail="bare mode: only application-level controls are active",
        reasons=dict.fromkeys(controls, why),
    )


@dataclass(frozen=True)
class GatewayDeps:
    """Everything ``create_app`` needs from outside; tests pass fakes."""

    store: Store
    host: ReviewHost
    runner: ReviewRunner | None  # None: review jobs wait in the queue until one is registered
    queue: JobQueue | None = None  # default: SqliteJobQueue on ``store``
    chat_runner: ChatRunner | None = None
    clock: Clock = field(default_factory=SystemClock)
    metrics: GatewayMetrics | None = None  # None: a fresh one on its own CollectorRegistry
    probes: Mapping[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    posture: PostureProvider = bare_posture
    mode_resolver: ReviewModeResolver | None = None
    tracker: PrTracker | None = None
    run_workers: bool = True
    run_poller: bool = True

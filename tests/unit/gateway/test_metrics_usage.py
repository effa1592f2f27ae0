"""Model tokens and cost land in the metrics under the tier that spent them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from auto_review.gateway._metrics import GatewayMetrics
from auto_review.hosts import HeadSha, RepoRef
from auto_review.jobs._models import Job, JobKind, JobState
from auto_review.review import Outcome, ReviewOutcome, TierUsage, Trigger


def _job() -> Job:
    return Job(
        id=1,
        kind=JobKind.REVIEW,
        state=JobState.DONE,
        repo=RepoRef("alice", "demo"),
        number=1,
        head_sha=HeadSha("a" * 40),
        trigger=Trigger.CI,
        force=False,
        full=False,
        comment_id=None,
        comment_kind=None,
        author=None,
        body=None,
        attempts=1,
        max_attempts=3,
        not_before=0.0,
        created_at=0.0,
        updated_at=0.0,
        started_at=0.0,
        finished_at=1.0,
        result="posted",
        reason="ok",
    )


def test_job_metrics_count_tokens_and_cost_per_tier() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    outcome = ReviewOutcome(
        Outcome.POSTED,
        "ok",
        usage_by_tier=(
            TierUsage("reasoning", 1000, 200, 0.5),
            TierUsage("cheap", 300, 40, 0.01),
        ),
    )
    metrics.job_finished(_job(), result="posted", duration_secs=2.0, outcome=outcome)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("auto_review_model_tokens_total", tier="reasoning", direction="prompt") == 1000
    assert value("auto_review_model_tokens_total", tier="cheap", direction="completion") == 40
    assert value("auto_review_model_cost_usd_total", tier="cheap") == 0.01
    assert value("auto_review_model_cost_usd_total", tier="embedding") is None


def test_clone_egress_refusals_are_counted_by_reason() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    metrics.count_clone_egress_refusals((403, 403, 502, 599))

    def value(reason: str) -> float | None:
        return registry.get_sample_value(
            "auto_review_clone_egress_refusals_total", {"reason": reason}
        )

    assert value("destination_not_allowed") == 2
    assert value("forge_unreachable") == 1
    assert value("other") == 1  # a status outside the fixed set makes no new series
    assert value("too_many_connections") == 0  # every reason's series exists from the start

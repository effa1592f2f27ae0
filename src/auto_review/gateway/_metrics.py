"""Prometheus metrics of the gateway, on a registry of its own (never the global default).

Every label takes values from a small fixed set, so a hostile sender cannot create series.
docs/OPERATIONS.md ("Metrics") documents each name; a test checks the rule files against them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from auto_review import __version__
from auto_review.gateway._readiness import ReadinessResult
from auto_review.jobs import Job, JobKind, JobState, QueueStats
from auto_review.review import ReviewOutcome

__all__ = ["EVENTS", "PREFIX", "GatewayMetrics"]

PREFIX = "auto_review"
# Event label values; anything else is counted as "other".
EVENTS = (
    "pull_request",
    "issue_comment",
    "pull_request_comment",
    "pull_request_review_comment",
    "ping",
    "other",
)
_SIG_REASONS = ("missing", "malformed", "mismatch")
_TIERS = ("reasoning", "cheap", "embedding")
# The clone's egress proxy: refusal status -> reason label (its fixed reasons, by class).
_EGRESS_REASONS = {
    403: "destination_not_allowed",
    502: "forge_unreachable",
    503: "too_many_connections",
    400: "malformed_request",
    408: "request_timeout",
    431: "request_too_large",
}
_JOB_RESULTS = (
    "posted",
    "skipped",
    "superseded",
    "done",
    "retried",
    "cancelled",
    "timeout",
    "failed_host",
    "failed_llm",
    "failed_review",
    "failed_internal",
)


class GatewayMetrics:
    """All gateway metrics; also the ``JobObserver`` of the worker pool."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Info(f"{PREFIX}_build", "Version of the running build.", registry=r)
        self.build_info.info({"version": __version__})
        self.webhook_requests = Counter(
            f"{PREFIX}_webhook_requests_total",
            "Webhook deliveries by event and outcome.",
            ["event", "outcome"],
            registry=r,
        )
        self.signature_failures = Counter(
            f"{PREFIX}_webhook_signature_failures_total",
            "Rejected webhook signatures: missing (probing), malformed, mismatch (secret drift).",
            ["reason"],
            registry=r,
        )
        self.payload_failures = Counter(
            f"{PREFIX}_webhook_payload_failures_total",
            "Authenticated webhook bodies that could not be used (schema drift), by class.",
            ["event", "class"],
            registry=r,
        )
        self.duplicates = Counter(
            f"{PREFIX}_webhook_duplicates_total",
            "Replayed deliveries (id or signed body) answered 200.",
            registry=r,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_webhook_rate_limited_total",
            "Webhook requests refused with 429, by bucket.",
            ["scope"],
            registry=r,
        )
        self.ci_requests = Counter(
            f"{PREFIX}_ci_requests_total",
            "POST /reviews/ci calls by outcome.",
            ["outcome"],
            registry=r,
        )
        self.jobs_enqueued = Counter(
            f"{PREFIX}_jobs_enqueued_total",
            "Jobs created (coalesced requests are not counted).",
            ["kind", "source"],
            registry=r,
        )
        self.jobs_finished = Counter(
            f"{PREFIX}_jobs_finished_total",
            "Job ends by kind and result class.",
            ["kind", "result"],
            registry=r,
        )
        self.review_duration = Histogram(
            f"{PREFIX}_review_duration_seconds",
            "Wall time of review jobs that ran to an outcome.",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 900, 1800),
            registry=r,
        )
        self.model_tokens = Counter(
            f"{PREFIX}_model_tokens_total",
            "Model tokens spent by reviews, by tier and direction.",
            ["tier", "direction"],
            registry=r,
        )
        self.model_cost = Counter(
            f"{PREFIX}_model_cost_usd_total", "Estimated model cost in USD.", ["tier"], registry=r
        )
        self.clone_egress_refusals = Counter(
            f"{PREFIX}_clone_egress_refusals_total",
            "Connections the sandbox's egress proxy refused review clones, by reason "
            "(destination_not_allowed: git tried another origin than the forge's).",
            ["reason"],
            registry=r,
        )
        self.poller_enabled = Gauge(
            f"{PREFIX}_poller_enabled", "1 when the chat poller runs.", registry=r
        )
        self.poller_cycles = Counter(
            f"{PREFIX}_poller_cycles_total", "Completed chat poller cycles.", registry=r
        )
        self.poller_failures = Counter(
            f"{PREFIX}_poller_failures_total",
            "Chat poller failures by scope (pr: one PR's lists; cycle: a whole cycle).",
            ["scope"],
            registry=r,
        )
        self.poller_mentions = Counter(
            f"{PREFIX}_poller_mentions_total",
            "Mentions the poller queued as chat jobs.",
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth", "Queued jobs by kind.", ["kind"], registry=r
        )
        self.jobs_in_flight = Gauge(
            f"{PREFIX}_jobs_in_flight", "Jobs running in this process.", registry=r
        )
        self.isolation_control = Gauge(
            f"{PREFIX}_isolation_control",
            "Isolation controls in force (1) or not (0), read back at startup.",
            ["control", "state"],
            registry=r,
        )
        self.readiness = Gauge(
            f"{PREFIX}_readiness_check",
            "Last readiness result per check (1 ok, 0 failing).",
            ["check"],
            registry=r,
        )
        self._request_children: dict[tuple[str, str], Counter] = {}
        self._enqueued_children: dict[tuple[str, str], Counter] = {}
        for reason in _SIG_REASONS:
            self.signature_failures.labels(reason=reason)
        for kind in JobKind:
            for result in _JOB_RESULTS:
                self.jobs_finished.labels(kind=kind.value, result=result)
        for reason in (*_EGRESS_REASONS.values(), "other"):
            self.clone_egress_refusals.labels(reason=reason)
        self.rate_limited.labels(scope="global")
        self.rate_limited.labels(scope="client")

    def bind_queue(self, stats: Callable[[], QueueStats], in_flight: Callable[[], int]) -> None:
        """Read queue depth and in-flight counts at scrape time."""

        def depth(kind: JobKind) -> Callable[[], float]:
            return lambda: float(stats().counts.get(JobState.QUEUED.value, {}).get(kind.value, 0))

        for kind in JobKind:
            self.queue_depth.labels(kind=kind.value).set_function(depth(kind))
        self.jobs_in_flight.set_function(lambda: float(in_flight()))

    def set_isolation(self, controls: Mapping[str, str]) -> None:
        """One series per control, value 1 for its current state (e.g. seccomp=enforced)."""
        for control, state in controls.items():
            self.isolation_control.labels(control=control, state=state).set(1)

    def count_request(self, event: str, outcome: str) -> None:
        """One webhook request; the labelled child is cached (this runs once per delivery)."""
        key = (event, outcome)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.webhook_requests.labels(
                event=event, outcome=outcome
            )
        child.inc()

    def count_enqueued(self, kind: str, source: str) -> None:
        key = (kind, source)
        child = self._enqueued_children.get(key)
        if child is None:
            child = self._enqueued_children[key] = self.jobs_enqueued.labels(
                kind=kind, source=source
            )
        child.inc()

    def count_clone_egress_refusals(self, statuses: tuple[int, ...]) -> None:
        """The pipeline's ``EgressObserver``: told as each clone ends, whatever the review does
        next (a review that fails later has no outcome to count them from)."""
        for status in statuses:
            self.clone_egress_refusals.labels(reason=_EGRESS_REASONS.get(status, "other")).inc()

    def record_readiness(self, result: ReadinessResult) -> None:
        for check, ok in result.checks.items():
            self.readiness.labels(check=check).set(1 if ok else 0)

    def event_label(self, event: str) -> str:
        return event if event in EVENTS else "other"

    # -- JobObserver ------------------------------------------------------------------------

    def job_finished(
        self, job: Job, *, result: str, duration_secs: float, outcome: ReviewOutcome | None
    ) -> None:
        label = result if result in _JOB_RESULTS else "failed_internal"
        self.jobs_finished.labels(kind=job.kind.value, result=label).inc()
        if job.kind is JobKind.REVIEW and result != "retried":
            self.review_duration.observe(duration_secs)
        if outcome is not None:
            for usage in outcome.usage_by_tier:
                tier = usage.tier if usage.tier in _TIERS else "other"
                self.model_tokens.labels(tier=tier, direction="prompt").inc(usage.prompt_tokens)
                self.model_tokens.labels(tier=tier, direction="completion").inc(
                    usage.completion_tokens
                )
                self.model_cost.labels(tier=tier).inc(max(0.0, usage.cost_usd))

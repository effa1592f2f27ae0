"""``ops status`` reads /metrics from a gateway that may be subverted (THREAT-MODEL A5)."""

from __future__ import annotations

from auto_review.ops import _status

_METRICS = """# TYPE auto_review_webhook_requests_total counter
auto_review_webhook_requests_total{outcome="accepted"} 3
auto_review_webhook_requests_total{outcome="pong"} +Inf
# TYPE auto_review_webhook_payload_failures_total counter
auto_review_webhook_payload_failures_total NaN
"""


def test_status_skips_metric_values_that_are_not_finite() -> None:
    # int(inf) raised OverflowError: ops status ended in a traceback, not a summary.
    samples = _status._samples(_METRICS)
    assert _status._by(samples, "webhook_requests_total", "outcome") == {"accepted": 3}
    assert int(_status._total(samples, "webhook_payload_failures_total")) == 0

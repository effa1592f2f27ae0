"""The gateway service: webhook and CI intake, operator endpoints, chat poller, metrics."""

from auto_review.gateway._app import Gateway, create_app
from auto_review.gateway._context import (
    GatewayDeps,
    IsolationReport,
    PostureProvider,
    ReviewMode,
    ReviewModeResolver,
    bare_posture,
)
from auto_review.gateway._metrics import GatewayMetrics
from auto_review.gateway._readiness import Probe, Readiness, ReadinessResult

__all__ = [
    "Gateway",
    "GatewayDeps",
    "GatewayMetrics",
    "IsolationReport",
    "PostureProvider",
    "Probe",
    "Readiness",
    "ReadinessResult",
    "ReviewMode",
    "ReviewModeResolver",
    "bare_posture",
    "create_app",
]

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
from auto_review.gateway._serve import (
    RunnerFactory,
    ServiceParts,
    pipeline_runner,
    serve,
    serve_async,
)

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
    "RunnerFactory",
    "ServiceParts",
    "bare_posture",
    "create_app",
    "pipeline_runner",
    "serve",
    "serve_async",
]

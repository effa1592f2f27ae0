"""A gateway child process with a test pipeline: ``python -m tests.e2e.gateway_entry``.

It runs the production ``serve()`` unchanged; only the review pipeline is a test double that
posts a ``pending`` status on the (fake) forge, then blocks while the file named by
``E2E_HOLD_FILE`` exists (so a test can kill the process mid-review), then posts ``success``.
Like the production pipeline's clone, it tells the gateway's metrics of what the egress proxy
refused: one 403 per review, so a test can see that those metrics are the ones served.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from auto_review.gateway import ServiceParts, bare_posture, serve
from auto_review.hosts import CommitState, CommitStatus
from auto_review.jobs import STATUS_CONTEXT
from auto_review.review import Outcome, ReviewOutcome, ReviewRequest, ReviewRunner
from auto_review.settings import load_settings


class HoldingRunner:
    def __init__(self, parts: ServiceParts, hold: Path) -> None:
        self._host = parts.host
        self._hold = hold
        self._metrics = parts.metrics

    async def run(self, request: ReviewRequest) -> ReviewOutcome:
        pending = CommitStatus(STATUS_CONTEXT, CommitState.PENDING, "auto-review running")
        await self._host.set_commit_status(request.repo, request.head_sha, pending)
        self._metrics.count_clone_egress_refusals((403,))
        while self._hold.exists():  # noqa: ASYNC110 - the test controls this file
            await asyncio.sleep(0.02)
        done = CommitStatus(STATUS_CONTEXT, CommitState.SUCCESS, "no findings")
        await self._host.set_commit_status(request.repo, request.head_sha, done)
        return ReviewOutcome(Outcome.POSTED, "posted")


def main() -> None:
    settings = load_settings().settings
    hold = Path(os.environ["E2E_HOLD_FILE"])

    def factory(parts: ServiceParts) -> ReviewRunner:
        return HoldingRunner(parts, hold)

    serve(settings, runner_factory=factory, posture=bare_posture)


if __name__ == "__main__":
    main()

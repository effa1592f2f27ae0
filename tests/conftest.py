"""Shared pytest configuration. Fixture modules of tests/fakes register in ``pytest_plugins``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from auto_review import logs

pytest_plugins: list[str] = ["tests.fakes.forge_fixtures", "tests.fakes.llm"]


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Leave logging as the test found it.

    An in-process CLI run configures logging onto its runner's stream, which the runner closes
    afterwards; a later test that logs would then fail on the closed stream.
    """
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs._LibraryHandler)]:
        root.removeHandler(handler)

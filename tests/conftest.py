"""Shared pytest configuration. Fixture modules of tests/fakes register in ``pytest_plugins``."""

from __future__ import annotations

pytest_plugins: list[str] = ["tests.fakes.forge_fixtures", "tests.fakes.llm"]

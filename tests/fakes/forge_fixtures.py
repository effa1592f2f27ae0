"""Pytest fixtures of the fake forge (registered in tests/conftest.py ``pytest_plugins``).

- ``fake_forge``: a started ``FakeForge`` for one test, with the bot user ``auto-review`` and its
  token (``fake_forge.bot_token``); stopped afterwards. Teardown fails the test if the fake
  answered a status its route does not declare (the contract test relies on those sets).
- ``forge_repo``: ``alice/demo`` on that forge with a ``main`` branch and an open PR #1 from
  ``feature`` (one modified and one added file), for tests that just need "a PR".

Usage::

    pytestmark = pytest.mark.anyio

    async def test_something(fake_forge: FakeForge, forge_repo: PullRecord) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            host = ForgejoHost(client, base_url=fake_forge.url, token=fake_forge.bot_token)
            pr = await host.get_pull_request(RepoRef("alice", "demo"), 1)
        fake_forge.push("alice/demo", "feature", {"src/app.py": "..."})  # new head commit
        fake_forge.comment("alice/demo", 1, "@auto-review review", author="bob")
        fake_forge.fail("/repos/{owner}/{repo}/pulls/{index}", status=429, retry_after="1")
        assert fake_forge.repo("alice/demo").reviews == []  # state is plain dataclasses
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord

__all__ = ["fake_forge", "forge_repo"]

DEMO_BASE_FILES = {
    "README.md": "# demo\n",
    "src/app.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
}
DEMO_HEAD_FILES = {
    "src/app.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b\n",
    "src/new.py": "VALUE = 1\n",
}


@pytest.fixture
def fake_forge(tmp_path: Path) -> Iterator[FakeForge]:
    """A running fake forge for one test."""
    forge = FakeForge(tmp_path / "forge")
    with forge:
        yield forge
    assert not forge.violations, forge.violations


@pytest.fixture
def forge_repo(fake_forge: FakeForge) -> PullRecord:
    """``alice/demo`` with PR #1 (``feature`` -> ``main``) open."""
    fake_forge.create_repo("alice/demo", DEMO_BASE_FILES)
    fake_forge.push("alice/demo", "feature", DEMO_HEAD_FILES, message="change sub, add new")
    return fake_forge.open_pull(
        "alice/demo", head="feature", title="Fix things", body="Please review", author="alice"
    )

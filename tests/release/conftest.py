"""Release smoke tests: they run the BUILT executable (dist/auto-review), never the source tree.

Build first with ``packaging/build``; CI builds once per run, then runs
``pytest tests/release --release-binary dist/auto-review``. Without a built file every test here
is skipped with that reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auto_review.settings import LLMConfig
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel, reply
from tests.release._gateway import Scene

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = ROOT / "dist" / "auto-review"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--release-binary",
        default=None,
        help="the built auto-review executable to test (default: dist/auto-review)",
    )


@pytest.fixture(scope="session")
def release_binary(request: pytest.FixtureRequest) -> Path:
    """The built executable; skips the test when there is none."""
    chosen = request.config.getoption("--release-binary", default=None)
    binary = Path(chosen).resolve() if chosen else DEFAULT_BINARY
    if not binary.is_file():
        pytest.skip(f"{binary} does not exist: build it first with packaging/build")
    return binary


@pytest.fixture(scope="session")
def release_dir(release_binary: Path) -> Path:
    """The directory of the release set (SHA256SUMS, SBOM, provenance, tarball)."""
    return release_binary.parent


@pytest.fixture
def scene(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    tmp_path: Path,
) -> Scene:
    """The fake forge with one open PR and a scripted model that finds nothing."""
    answer = {"summary": "Changes sub.", "walkthrough": "- src/app.py", "findings": []}
    scripted_model.respond_with(lambda request: reply(json.dumps(answer)))
    return Scene(fake_forge, forge_repo, scripted_model, scripted_llm_config, tmp_path / "state")

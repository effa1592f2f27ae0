"""Release smoke tests: they run the BUILT executable (dist/auto-review), never the source tree.

Build first with ``packaging/build``; CI builds once per run, then runs
``pytest tests/release --release-binary dist/auto-review``. Without a built file every test here
is skipped with that reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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

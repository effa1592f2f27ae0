"""An ``auto-review`` that the restricted-tier gateway's host identity can run.

Started by root, the restricted tier's gateway is host uid 65534 (docs/adr/0010), and Landlock
opens each of its read paths, the interpreter's included, as that uid. The suite's interpreter
may sit where uid 65534 cannot reach (root's pyenv under /root, mode 0700): then, once per test
session, a venv is made from the system Python in a directory under /var/tmp that others can
search, with this checkout installed into it, as an operator installing for that tier would.
Anyone else runs the suite's own ``auto-review``: their gateway keeps their uid.
Also what the restricted-tier gateway tests (e2e and red team) share: the tier or a skip, the
gateway's host uid, and a host directory that uid can search; and, for the gateway tests of
both tiers, the check that /info gives each control the reason `sandbox check --json` gives.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.gateway_process import REPO_ROOT

from auto_review.sandbox import KernelFeatureMissing, Tier, probe_host, require_tier

__all__ = [
    "HOST_FACT_CONTROLS",
    "NOBODY",
    "assert_reasons_match_sandbox_check",
    "gateway_bin",
    "gateway_uid",
    "reachable_by_others",
    "require_restricted_tier",
    "searchable_dir",
    "state_dir_in",
]

NOBODY = 65534  # a root-started restricted-tier gateway's host uid (docs/adr/0010)

SYSTEM_PYTHON = Path("/usr/bin/python3.11")
_BUILT: list[Path] = []
_NAMESPACE_CONTROLS = tuple(
    f"{ns}_namespace" for ns in ("user", "mnt", "pid", "ipc", "uts", "cgroup", "net")
)
_PROCESS_FACTS = ("seccomp", "no_new_privs", "capabilities", "landlock_scope", "cgroup_limits")
# The controls whose state and reason are facts of the host, the tier and the starting uid,
# not of the policy or the process (those name path counts, ports, limits, namespace ids): the
# gateway's /info must give these exactly as `sandbox check` does for a job at the same tier.
HOST_FACT_CONTROLS: Mapping[Tier, tuple[str, ...]] = {
    Tier.FULL: _PROCESS_FACTS,
    Tier.RESTRICTED: (*_NAMESPACE_CONTROLS, "filesystem_view", *_PROCESS_FACTS),
}


def reachable_by_others(path: Path) -> bool:
    """True when every directory down to ``path`` (resolved) is searchable by other users."""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (real, *real.parents))


def gateway_bin() -> Path:
    """The directory of the ``auto-review`` (and ``python``) that the gateway should run."""
    own = Path(sys.executable).parent
    if os.geteuid() != 0 or reachable_by_others(Path(sys.executable)):
        return own
    if _BUILT:
        return _BUILT[0]
    if not SYSTEM_PYTHON.exists():
        pytest.skip(
            f"{sys.executable} is not reachable by uid 65534 and {SYSTEM_PYTHON} is missing "
            "(Debian: apt-get install python3.11-venv) to build a venv that uid can run"
        )
    base = Path(tempfile.mkdtemp(prefix="ar-gateway-python-", dir="/var/tmp"))
    atexit.register(shutil.rmtree, base, True)
    base.chmod(0o755)
    venv = base / "venv"
    steps = (
        [str(SYSTEM_PYTHON), "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(REPO_ROOT / "requirements" / "constraints.txt"),
            str(REPO_ROOT),
        ],
    )
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.fail(f"building the gateway's venv failed: {argv}\n{done.stderr[-2000:]}")
    _BUILT.append(venv / "bin")
    return _BUILT[0]


def require_restricted_tier() -> int:
    """The Landlock ABI of the restricted tier here, or a skip naming the missing feature."""
    try:
        return require_tier(Tier.RESTRICTED, probe_host()).landlock_abi
    except KernelFeatureMissing as exc:
        pytest.skip(f"restricted tier unavailable here: {exc.message}")


def assert_reasons_match_sandbox_check(isolation: Mapping[str, Any], tier: Tier) -> None:
    """/info's ``isolation`` gives every control a reason, keyed like ``controls``, and the
    host-fact controls the state and reason `auto-review sandbox check --json` reads back."""
    controls, reasons = isolation["controls"], isolation["reasons"]
    assert set(reasons) == set(controls), (reasons, controls)
    assert all(reasons.values()), reasons
    done = subprocess.run(
        [sys.executable, "-m", "auto_review", "sandbox", "check", "--json", "--isolation", tier],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    checked = {c["name"]: c for c in json.loads(done.stdout)["posture"]["controls"]}
    for name in HOST_FACT_CONTROLS[tier]:
        got = (controls[name], reasons[name])
        assert got == (checked[name]["state"], checked[name]["reason"]), (name, got)


def gateway_uid() -> int:
    """The restricted-tier gateway's uid on the host: 65534 when root starts it."""
    return NOBODY if os.geteuid() == 0 else os.getuid()


@contextlib.contextmanager
def searchable_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under /var/tmp that others can search (not root's 0700
    /tmp/pytest-of-root): the gateway may be another uid than the test."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def state_dir_in(parent: Path) -> Path:
    """A 0700 state dir the gateway's uid owns: as root, chowned to 65534 as the operator would."""
    state = parent / "state"
    state.mkdir(mode=0o700)
    os.chown(state, gateway_uid(), gateway_uid())
    return state

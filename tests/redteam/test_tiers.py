"""Tiers on the real kernel: a host without user namespaces is made, not mocked.

``unshare --user --map-root-user`` (util-linux) gives the CLI a user namespace of its own whose
``user.max_user_namespaces`` it sets to 0, so every nested ``unshare(CLONE_NEWUSER)`` inside fails
with ENOSPC: exactly what a host with the sysctl at 0 shows (prior-art §1.12, E8). The CLI is
exec'd there as an operator would run it, and must: refuse ``full`` naming the sysctl and its
fix, run jobs in ``restricted`` (Landlock + seccomp, no namespaces), and never fall back to
``none`` unless told so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.redteam._harness import CLI, Outcome, Probes, run_host, run_sandboxed

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox]

_TIER_UNAVAILABLE_EXIT = 124
"""``KernelFeatureMissing.exit_code`` of ``sandbox run``."""

_NO_USERNS_SHELL = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'


@pytest.fixture(scope="module")
def no_userns() -> list[str]:
    """argv prefix that runs a command where user namespaces are exhausted (ENOSPC)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("util-linux unshare(1) is not installed; it builds the no-userns host")
    prefix = [unshare, "--user", "--map-root-user", "--", "sh", "-c", _NO_USERNS_SHELL, "sh"]
    check = subprocess.run(
        [*prefix, "unshare", "--user", "true"], capture_output=True, text=True, check=False
    )
    if "No space left on device" not in check.stderr:
        pytest.skip(
            "could not build the no-userns host (need unprivileged user namespaces on the real "
            f"host): rc={check.returncode} {check.stderr.strip()}"
        )
    return prefix


def _check_json(prefix: list[str], *extra: str) -> tuple[int, dict[str, object]]:
    proc = subprocess.run(
        [*prefix, *CLI, "sandbox", "check", "--json", *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_full_tier_holds_on_this_host(probes: Probes) -> None:
    """Positive control: on the real host `sandbox check` reports the full tier, so the refusal
    below comes from the exhausted user namespaces, not from a host that never had them."""
    del probes
    code, data = _check_json([])
    assert code == 0, data
    host = data["host"]
    assert isinstance(host, dict)
    assert host["best_tier"] == "full", data
    assert data["supported"] is True


def test_full_tier_is_refused_with_max_user_namespaces_diagnosis(no_userns: list[str]) -> None:
    """Check: with user.max_user_namespaces = 0, `sandbox check --json` says full is
    unsupported, names ENOSPC and the sysctl, and gives the fix; `sandbox run` (full by
    default) exits 124 with the same diagnosis instead of running anything.
    Reference: issue 3 "Tiers and probe"; prior-art §1.12; E8."""
    code, data = _check_json(no_userns)
    assert code == 1, data
    assert data["supported"] is False
    assert data["requested"] == "full"
    host = data["host"]
    assert isinstance(host, dict)
    assert host["best_tier"] == "restricted", data
    userns = host["user_namespaces"]
    assert isinstance(userns, dict)
    assert userns["available"] is False
    assert "max_user_namespaces" in str(userns["detail"]), userns
    assert "ENOSPC" in str(userns["detail"]), userns
    assert "user.max_user_namespaces=" in str(data["fix"]), data

    box = run_sandboxed(["/bin/true"], prefix=no_userns)
    assert box.returncode == _TIER_UNAVAILABLE_EXIT, box.describe()
    assert "max_user_namespaces" in box.stderr, box.describe()


def test_restricted_tier_confines_a_job_without_user_namespaces(
    no_userns: list[str],
    probes: Probes,
    python_view: tuple[Path, ...],
    fake_home: Path,
    host_sleeper: subprocess.Popen[bytes],
) -> None:
    """Check: where full is refused, `--isolation restricted` still runs the job with
    no_new_privs, seccomp filter mode and no capabilities, and its attacks fail: the planted
    key and a host process's /proc/<pid>/environ (no pid namespace in this tier) are refused by
    Landlock (EACCES, not ENOENT: there is no mount view here), keyctl by seccomp (EPERM).
    The host controls read both files and call keyctl. Reference: DESIGN.md tiers; prior-art
    §7 Tier B; E5-E7."""
    ro = [probes.directory, *python_view]

    def restricted(argv: list[str]) -> Outcome:
        return run_sandboxed(argv, ro=ro, isolation="restricted", prefix=no_userns)

    check = restricted([*probes.pyprobe, "selfcheck"])
    assert check.result is not None, check.describe()
    assert check.result["no_new_privs"] == 1, check.describe()
    assert check.result["seccomp"] == 2, check.describe()
    assert check.result["cap_eff"] == 0, check.describe()

    for path in (fake_home / ".ssh" / "id_ed25519", Path(f"/proc/{host_sleeper.pid}/environ")):
        host = run_host([*probes.pyprobe, "read", str(path)])
        assert host.ok, host.describe()
        read = restricted([*probes.pyprobe, "read", str(path)])
        assert read.result is not None, read.describe()
        assert not read.ok, read.describe()
        assert read.errno == "EACCES", f"expected EACCES from Landlock: {read.describe()}"

    host = run_host([*probes.c("try_syscall"), "keyctl"])
    assert host.ok, host.describe()
    keyctl = restricted([*probes.c("try_syscall"), "keyctl"])
    assert keyctl.result is not None, keyctl.describe()
    assert keyctl.errno == "EPERM", f"expected EPERM from seccomp: {keyctl.describe()}"


def test_none_tier_is_used_only_when_asked_for(
    no_userns: list[str], probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Check: without an explicit `--isolation none` (or AR_ISOLATION=none) the CLI never
    runs a job unconfined, even where full is impossible; asked explicitly, it warns loudly and
    the job really is unconfined (Seccomp 0), so "none" is never a silent label.
    Reference: DESIGN.md "Never a silent downgrade"."""
    argv = [*probes.pyprobe, "selfcheck"]
    ro = [probes.directory, *python_view]
    env = {k: v for k, v in os.environ.items() if k != "AR_ISOLATION"}
    refused = run_sandboxed(argv, ro=ro, env=env, prefix=no_userns)
    assert refused.returncode == _TIER_UNAVAILABLE_EXIT, refused.describe()
    assert refused.result is None, "a job ran although its tier was refused"

    bare = run_sandboxed(argv, ro=ro, isolation="none", env=env, prefix=no_userns)
    assert bare.result is not None, bare.describe()
    assert "warning" in bare.stderr.lower(), bare.describe()
    assert bare.result["seccomp"] == 0, bare.describe()

    via_env = run_sandboxed(argv, ro=ro, env={**env, "AR_ISOLATION": "none"}, prefix=no_userns)
    assert via_env.result is not None, via_env.describe()
    assert "warning" in via_env.stderr.lower(), via_env.describe()

"""identity: what root shares of its own files with a restricted-tier job, and how a refusal
names the host uid and the fixes that work in the tier in use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import in_child

from auto_review.sandbox import identity
from auto_review.sandbox.errors import SandboxPolicyInvalid


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_share_read_only_opens_a_pyinstaller_style_tree_for_reading_all_the_way_down(
    tmp_path: Path,
) -> None:
    """PyInstaller extracts its one-file bundle 0700 with files 0600/0700: a job of another uid
    must read every file and search every directory, and run what the owner may run."""
    top = tmp_path / "_MEIabc"
    package = top / "auto_review" / "review"
    package.mkdir(parents=True)
    library = top / "libpython3.11.so.1.0"
    module = package / "queries.scm"
    for path, mode in ((library, 0o700), (module, 0o600)):
        path.write_bytes(b"x")
        path.chmod(mode)
    for directory in (package, package.parent, top):
        directory.chmod(0o700)

    identity.share_read_only(str(top))

    assert [_mode(p) for p in (top, package.parent, package)] == [0o755] * 3
    assert (_mode(library), _mode(module)) == (0o755, 0o644)


def test_share_read_only_never_adds_write_and_never_follows_symlinks(tmp_path: Path) -> None:
    """Only root may write the shared tree (a job that could would poison later spawns, §4.1
    case 29); a symlink in it must not carry the widening to a file outside."""
    top = tmp_path / "bundle"
    top.mkdir(mode=0o700)
    outside = tmp_path / "secret"
    outside.write_bytes(b"k")
    outside.chmod(0o600)
    (top / "link").symlink_to(outside)
    kept = top / "already-shared"
    kept.write_bytes(b"x")
    kept.chmod(0o644)

    identity.share_read_only(str(top))

    assert _mode(outside) == 0o600
    assert _mode(kept) == 0o644
    assert all(not p.lstat().st_mode & 0o022 for p in (top, kept))


GRANT = "setfacl -m u:N:x"


@pytest.mark.parametrize(
    ("host", "who", "fix"),
    [
        pytest.param(
            identity.HostIdentity(65534, full_tier=False, root_started=True),
            "uid 65534, the host identity of what root runs in the restricted tier",
            f"give uid 65534 access ({GRANT}), run auto-review as an ordinary user, "
            "or use the full tier",
            id="restricted-root",
        ),
        pytest.param(
            identity.HostIdentity(1000, full_tier=False, root_started=False),
            "uid 1000",
            f"give uid 1000 access ({GRANT})",
            id="restricted-user",
        ),
        pytest.param(
            identity.HostIdentity(65534, full_tier=True, root_started=True),
            "host uid 65534, to which the full tier maps what root runs",
            f"give uid 65534 access ({GRANT}), or run auto-review as an ordinary user "
            "(then mapped to that user)",
            id="full-root",
        ),
        pytest.param(
            identity.HostIdentity(1000, full_tier=True, root_started=False),
            "host uid 1000, the caller's, to which the full tier maps what it runs",
            f"give uid 1000 access ({GRANT})",
            id="full-user",
        ),
    ],
)
def test_refusal_advice_names_the_host_uid_and_offers_the_full_tier_only_outside_it(
    host: identity.HostIdentity, who: str, fix: str
) -> None:
    """Root's full-tier processes are host nobody too, so "use the full tier" would send an
    operator in a circle there; and an ordinary user's full-tier binds are made with the same
    uid that was refused, so only root's restricted tier is offered it."""
    assert host.who() == who
    assert host.fix(GRANT) == fix


def test_require_access_names_the_unusable_path_uid_and_every_fix(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)

    def refused() -> str:
        if os.geteuid() == 0:  # as root's restricted job: host nobody, without root's DAC bypass
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
        try:
            identity.require_access([str(locked)], [], 65534)
        except SandboxPolicyInvalid as exc:
            return exc.message
        return "not refused"

    assert in_child(refused) == (
        f"{locked}: not usable by uid 65534, the host identity of what root runs in the "
        "restricted tier (read paths need r, write paths rw, directories also x); give uid 65534 "
        "access (chown 65534, or setfacl -m u:65534:rwX), run auto-review as an ordinary user, "
        "or use the full tier"
    )

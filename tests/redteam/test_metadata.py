"""Red team: a job changing the permissions of files it owns but was not given (Landlock does
not govern chmod)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from tests.redteam._harness import run_host, run_sandboxed

_NOBODY = 65534


@pytest.mark.parametrize("tier", ["full", "restricted"])
def test_job_cannot_open_files_of_its_uid_to_other_users_by_chmod(tier: str) -> None:
    """Attack (F93): Landlock governs opening, creating and removing, not chmod, so in the
    restricted tier a job could chmod anything its uid owns that it can name, granted or not.
    Started by an ordinary user that is everything of the service: its state directory and
    database, and a one-file build's unpacked files, which a job made 0777 for any local user to
    replace before the service loaded them (a root-started restricted job is host nobody: a
    directory of nobody's stands in). Control: seccomp refuses a chmod that gives group or
    others write (EPERM) in every tier; the full tier does not show the path at all. Host
    control: the owner outside the sandbox can; a chmod to the same mode is allowed (the job
    does own it, so the refusal is the filter's)."""
    root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix=".ar-redteam-chmod-", dir="/var/tmp" if root else None))
    try:
        base.chmod(0o755)
        owned = base / "owned-by-the-job-uid"
        owned.mkdir(mode=0o700)
        if root:  # the job's uid: host nobody (restricted) or mapped to it (full, nested userns)
            os.chown(owned, _NOBODY, _NOBODY)
        host = run_host(["chmod", "0777", str(owned)])
        assert host.returncode == 0, host.describe()
        owned.chmod(0o700)
        for mode in ("0777", "0702", "0720"):
            box = run_sandboxed(["chmod", mode, str(owned)], isolation=tier)
            assert box.returncode != 0, box.describe()
            assert owned.stat().st_mode & 0o777 == 0o700, box.describe()
            if tier == "restricted":
                assert "Operation not permitted" in box.stderr, box.describe()
        if tier == "restricted":
            same = run_sandboxed(["chmod", "0700", str(owned)], isolation=tier)
            assert same.returncode == 0, same.describe()
    finally:
        shutil.rmtree(base, ignore_errors=True)

"""The built executable's restricted tier, started by root: the job is host nobody (ADR 0010).

Root's restricted-tier job has no user namespace: it switches to host uid/gid 65534 itself, and
the one-file build shares its unpacked directory (``sys._MEIPASS``, which PyInstaller makes
root-only) with that uid for reading, so a Python callable job, which re-executes this same
file, can load it. These tests run only as root: started by anyone else, the job keeps its
caller's identity and nothing is shared (tests/release/test_sandbox.py covers that caller).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e._harness import review_answer
from tests.fakes.llm import ScriptedModel, ScriptedModelServer, reply
from tests.fakes.llm_script import SCRIPTED_API_KEY
from tests.release._binary import host_environment
from tests.unit.review._git import git, make_repo

pytestmark = pytest.mark.sandbox

NOBODY = 65534
# A probe that tries to open for writing (append, so nothing is changed where it succeeds) the
# unpacked directory of the outer process (found under its TMPDIR, $1), files in it, the running
# executable ($1/auto-review: busy for everyone while it runs) and an idle copy of it; one line
# per target: "written" or the shell's strerror.
_WRITE_PROBE = r"""
m=$(echo "$1"/_MEI*)
[ -d "$m" ] || { echo "no unpacked directory under $1" >&2; exit 90; }
stat -c 'unpacked %a %u' "$m"
echo "shared-writable $(find "$m" -perm /022 | wc -l)"
echo "not-shared-readable $(find "$m" ! -type l ! -perm -004 | wc -l)"
for t in "$m/ar-probe-new-file" "$m/base_library.zip" "$m/libpython3.11.so.1.0" \
  "$1/auto-review" "$1/auto-review.idle"
do
  if msg=$( { true >>"$t"; } 2>&1 ); then echo "$t: written"; else echo "$t: ${msg##*: }"; fi
done
"""


@dataclass(frozen=True)
class _Copy:
    """A copy of the built file in a /tmp-like directory (1777), which is also its TMPDIR."""

    binary: Path
    directory: Path

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            env=host_environment(HOME="/nonexistent", TMPDIR=str(self.directory), **env),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def _maps_nobody() -> bool:
    with open("/proc/self/uid_map", encoding="ascii") as fh:
        for line in fh:
            inside, _outside, count = (int(v) for v in line.split())
            if inside <= NOBODY < inside + count:
                return True
    return False


@pytest.fixture
def copy(release_binary: Path) -> Iterator[_Copy]:
    """The built file where uid 65534 can reach it (the original may sit under /root), in a
    sticky world-writable directory like /tmp, into which it also unpacks itself."""
    if os.geteuid() != 0:
        pytest.skip("needs root: only a root-started restricted-tier job becomes host nobody")
    if not _maps_nobody():
        pytest.skip(f"uid {NOBODY} is not mapped in this user namespace: the job stays uid 0")
    directory = Path(tempfile.mkdtemp(prefix="ar-release-restricted-", dir="/tmp"))
    try:
        directory.chmod(0o1777)
        binary = directory / "auto-review"
        shutil.copy2(release_binary, binary)
        binary.chmod(0o755)
        shutil.copy2(binary, directory / "auto-review.idle")
        found = _Copy(binary, directory)
        if "sandbox" not in found.run("--help").stdout:
            pytest.skip("this build has no `sandbox` command")
        checked = found.run("sandbox", "check", "--isolation", "restricted")
        if checked.returncode != 0:
            pytest.skip(f"this host cannot give the restricted tier: {checked.stderr.strip()}")
        yield found
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("chosen_by", ["--isolation", "AR_ISOLATION"])
def test_release_restricted_tier_as_root_runs_the_job_as_nobody_and_passes_its_status(
    copy: _Copy, chosen_by: str
) -> None:
    script = "/usr/bin/id -u; /usr/bin/id -g; /usr/bin/id -G; exit 3"
    command = ("--", "/bin/sh", "-c", script)
    if chosen_by == "--isolation":
        ran = copy.run("sandbox", "run", "--policy", "run", "--isolation", "restricted", *command)
    else:
        ran = copy.run("sandbox", "run", "--policy", "run", *command, AR_ISOLATION="restricted")
    assert (ran.returncode, ran.stdout) == (3, f"{NOBODY}\n{NOBODY}\n{NOBODY}\n"), ran.stderr


@pytest.mark.parametrize("grant", ["--rw", "--ro"])
def test_release_root_restricted_job_cannot_write_the_unpacked_files_or_the_executable(
    copy: _Copy, release_binary: Path, grant: str
) -> None:
    """Attack: a job writes into the one-file build's unpacked directory or the executable, to
    poison later workers (which load from there) or later starts. Control: the unpacked files
    are root's, shared read-only (ADR 0010, decision 4), and the job is host nobody: the write
    fails with EACCES even where the job's Landlock rules allow writing (--rw on the directory
    holding both); with --ro (as a worker gets them) Landlock refuses as well. Reference: prior
    art §4.1 case 29; the probe is proven live by an unsandboxed run as root first."""
    probe = ("/bin/sh", "-c", _WRITE_PROBE, "probe", str(copy.directory))
    rw = ("--rw", str(copy.directory))  # the control: root, no Landlock, so only DAC
    targets = ("ar-probe-new-file", "base_library.zip", "libpython3.11.so.1.0", "auto-review.idle")

    bare = copy.run("sandbox", "run", "--isolation", "none", *rw, "--", *probe)
    assert bare.returncode == 0, bare.stderr
    lines = bare.stdout.splitlines()
    # Unsandboxed, the job is root: the tree is still PyInstaller's 0700 (no tier shared it),
    # every target opens for writing, and the running executable only refuses as busy.
    assert lines[:2] == ["unpacked 700 0", "shared-writable 0"], lines
    unreadable = lines[2].removeprefix("not-shared-readable ")
    assert unreadable.isdigit(), lines
    assert int(unreadable) > 0, lines
    for target in targets:
        assert any(line.endswith(f"/{target}: written") for line in lines), lines
    assert any(line.endswith("/auto-review: Text file busy") for line in lines), lines

    confined = copy.run(
        "sandbox", "run", "--isolation", "restricted", grant, str(copy.directory), "--", *probe
    )
    assert confined.returncode == 0, confined.stderr
    lines = confined.stdout.splitlines()
    # Shared for reading and searching only: the unpacked tree stays root's, nothing in it is
    # writable by group or others, and every file in it is readable by others.
    assert lines[:3] == ["unpacked 755 0", "shared-writable 0", "not-shared-readable 0"], lines
    for target in (*targets, "auto-review"):
        assert any(line.endswith(f"/{target}: Permission denied") for line in lines), lines
    # The probe only opened for appending: where that succeeded, nothing was written.
    assert copy.binary.read_bytes() == release_binary.read_bytes()


BASE = "def load(conn, key):\n" + "".join(f"    v{i} = {i}\n" for i in range(12))
BASE += "    return conn.get(key)\n"


def _checkout(directory: Path) -> Path:
    """A repository whose one change sits deep in a function, so the review's context names the
    enclosing definition: found only by the sandboxed ``symbols`` analysis (a Python callable)."""
    root = make_repo(directory / "work", {"app/store.py": BASE})
    git(root, "checkout", "-q", "-b", "feature")
    (root / "app" / "store.py").write_text(BASE.replace("conn.get(key)", "eval(conn.get(key))"))
    git(root, "commit", "-q", "-am", "use eval")
    # Root's restricted-tier jobs are host nobody: the checkout they read and git writes must be
    # theirs (ADR 0010, consequences).
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root)], check=True)
    return root


@pytest.fixture
def model() -> Iterator[tuple[ScriptedModelServer, ScriptedModel]]:
    with ScriptedModelServer() as server:
        server.model.respond_with(lambda _request: reply(json.dumps(review_answer())))
        yield server, server.model


def test_release_root_restricted_tier_runs_the_python_analysis_job_from_the_built_file(
    copy: _Copy, model: tuple[ScriptedModelServer, ScriptedModel]
) -> None:
    """``review local`` as root in the restricted tier: git runs as host nobody, and the
    ``symbols`` analysis re-executes the built file as host nobody, reusing the unpacked files;
    its result (the enclosing function) reaches the model's prompt."""
    server, scripted = model
    root = _checkout(copy.directory)
    ran = copy.run(
        "review",
        "local",
        "--repo",
        str(root),
        "--base",
        "main",
        "--format",
        "json",
        LLM_BASE_URL=server.base_url,
        LLM_API_KEY=SCRIPTED_API_KEY,
        LLM_REASONING_MODEL="scripted-reasoning",
        AR_STATE_DIR=str(copy.directory / "state"),
        AR_ISOLATION="restricted",
    )
    assert ran.returncode == 0, ran.stderr
    review = json.loads(ran.stdout)
    # A failed analysis does not fail the review; it leaves a note naming why.
    assert review["notes"] == [], review["notes"]
    [request] = scripted.requests_to("/v1/chat/completions")
    prompt = request.body["messages"][1]["content"]
    assert "app/store.py — changed lines are inside:" in prompt
    assert "- function `load` (lines 1-14): def load(conn, key):" in prompt

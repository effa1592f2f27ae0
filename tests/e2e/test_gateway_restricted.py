"""`auto-review gateway` in the restricted tier (no namespaces: Landlock, seccomp, rlimits)
against the fake forge and the scripted model, on loopback, as root and as an ordinary user.

Each posture claim in /info is compared with what the host reads from /proc for the confined
gateway process, so a report that merely repeats the policy fails here. Started by root, the
gateway and its jobs are host uid 65534 (docs/adr/0010): its state directory must be usable by
that uid, which the tests arrange as an operator would, or leave undone to see the refusal.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.gateway_process import SECRET, GatewayProcess
from tests.e2e.gateway_python import (
    NOBODY,
    assert_reasons_match_sandbox_check,
    gateway_bin,
    gateway_uid,
    require_restricted_tier,
    searchable_dir,
    state_dir_in,
)
from tests.e2e.proc_tree import JobSampler, inner_gateway, job_server, status
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord
from tests.fakes.llm import ScriptedModel, reply
from tests.fakes.llm_script import SCRIPTED_API_KEY

from auto_review.sandbox import Tier
from auto_review.settings import LLMConfig

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

REPO = "alice/demo"
ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="only a root-started restricted-tier gateway becomes uid 65534 (docs/adr/0010); "
    "an ordinary user's keeps its own uid, so there is no state-dir ownership to get wrong",
)
_NAMESPACES = ("user", "mnt", "pid", "ipc", "uts", "cgroup", "net")


@pytest.fixture
def host_dir() -> Iterator[Path]:
    with searchable_dir("ar-e2e-restricted-") as path:
        yield path


@pytest.fixture
def state_dir(host_dir: Path) -> Path:
    return state_dir_in(host_dir)


def _gateway(
    state: Path, forge: FakeForge, *, log: Path | None = None, **env: str
) -> GatewayProcess:
    return GatewayProcess(
        state,
        forge_url=forge.url,
        forge_token=forge.bot_token,
        argv=(str(gateway_bin() / "auto-review"), "gateway"),
        env={"AR_ISOLATION": "restricted", **env},
        log=log,
    )


def _proc_namespaces(pid: int | str) -> dict[str, str]:
    return {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in _NAMESPACES}


def _max_processes(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max processes"):
            return line.split()[2]
    raise AssertionError(f"no Max processes line in /proc/{pid}/limits")


def test_restricted_gateway_reports_the_posture_the_host_reads_from_proc(
    fake_forge: FakeForge, state_dir: Path
) -> None:
    """/healthz answers the host; /info, /metrics and the startup log say tier restricted,
    requested and effective; each control's state agrees with /proc/<inner gateway> on the host: no
    namespace of its own, Seccomp 2, NoNewPrivs 1, no capabilities, a process limit, and (as
    root) every uid and gid 65534. Each control's reason is the sandbox's: the host facts as
    `sandbox check --json` gives them, and the clones' known gap (any address on the forge's
    port)."""
    abi = require_restricted_tier()
    gateway = _gateway(state_dir, fake_forge).start()
    try:
        assert gateway.proc is not None
        inner = inner_gateway(gateway.proc.pid)
        fields = status(inner)
        isolation = httpx.get(f"{gateway.url}/info", timeout=10).json()["isolation"]
        controls = isolation["controls"]
        assert (isolation["tier"], isolation["tier_requested"]) == ("restricted", "restricted")
        # The host's reading first, then the report: both must say the control holds.
        assert fields["Seccomp"] == "2", fields
        assert controls["seccomp"] == "on", controls
        assert fields["NoNewPrivs"] == "1", fields
        assert controls["no_new_privs"] == "on", controls
        assert int(fields["CapEff"], 16) == 0, fields
        assert controls["capabilities"] == "on", controls
        assert int(fields["CapPrm"], 16) == 0, fields
        assert set(fields["Uid"].split()) == set(fields["Gid"].split()) == {str(gateway_uid())}
        if os.geteuid() == 0:  # root could drop it; an ordinary user keeps it (NNP holds)
            assert int(fields["CapBnd"], 16) == 0, fields
        host, inside = _proc_namespaces("self"), _proc_namespaces(inner)
        for ns in _NAMESPACES:
            assert inside[ns] == host[ns], (ns, inside, host)
            assert controls[f"{ns}_namespace"] == "off", (ns, controls)
        assert controls["filesystem_view"] == "off"  # the host's tree, narrowed by Landlock
        assert _max_processes(inner) != "unlimited"
        assert controls["rlimits"] == "on"
        assert controls["landlock_fs"] == "on"
        assert controls["landlock_tcp"] == "on"
        assert controls["landlock_scope"] == ("on" if abi >= 6 else "unavailable")
        # No network namespace: clones reach any address on the forge's port.
        assert controls["egress"] == controls["clone_egress"] == "off"
        assert_reasons_match_sandbox_check(isolation, Tier.RESTRICTED)
        forge_port = httpx.URL(fake_forge.url).port
        clone = isolation["reasons"]["clone_egress"]
        assert f"connect ports [{forge_port}]" in clone, clone
        assert "any address" in clone, clone
        shown = json.dumps(isolation)  # host facts only: the forge URL carries no token
        assert SECRET not in shown
        assert fake_forge.bot_token not in shown
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        for name, state in controls.items():
            assert (
                f'auto_review_isolation_control{{control="{name}",state="{state}"}} 1.0' in metrics
            )
        [started] = [
            json.loads(line)
            for line in gateway.log.read_text().splitlines()
            if '"gateway_listening"' in line
        ]
        assert started["isolation_tier"] == "restricted"
        assert started["isolation_controls"] == controls
        assert started["isolation_reasons"] == isolation["reasons"]
        assert gateway.terminate() == 0
    finally:
        gateway.stop()


def test_restricted_gateway_reviews_a_pr_with_restricted_tier_jobs(
    fake_forge: FakeForge,
    forge_repo: PullRecord,
    scripted_model: ScriptedModel,
    scripted_llm_config: LLMConfig,
    state_dir: Path,
) -> None:
    """A review end to end: the confined gateway asks its job server for the clone and the
    analysis, which run in the restricted tier too (read from /proc while they run: no pid or
    mount namespace, seccomp on, and as root uid 65534), git fetches straight from the fake
    forge, and the review is posted."""
    require_restricted_tier()
    answer = {"summary": "Changes sub.", "walkthrough": "- src/app.py", "findings": []}
    scripted_model.respond_with(lambda request: reply(json.dumps(answer)))
    gateway = _gateway(
        state_dir,
        fake_forge,
        LLM_BASE_URL=scripted_llm_config.reasoning.base_url,
        LLM_API_KEY=SCRIPTED_API_KEY,
        LLM_REASONING_MODEL=scripted_llm_config.reasoning.model,
    ).start()
    try:
        assert gateway.proc is not None
        head = fake_forge.state.head_sha(fake_forge.repo(REPO), forge_repo)
        with JobSampler(job_server(gateway.proc.pid)) as jobs:
            gateway.review_via_ci(forge_repo.number, head, limit_secs=180)
        assert len(fake_forge.repo(REPO).reviews) == 1
        fetches = [c for c in fake_forge.calls if c.path.endswith("/git-upload-pack")]
        assert fetches, "the review did not fetch from the forge"
        assert all(c.status == 200 for c in fetches)
        assert jobs.seen, "no job sandbox was seen while the review ran"
        host = _proc_namespaces("self")
        commands = [" ".join(argv) for _fields, _ns, argv in jobs.seen.values()]
        # Each kind was seen confined: git (init, fetch, checkout) and the analysis worker.
        assert any(c.startswith("git ") for c in commands), commands
        assert any("auto_review.review._analysis:entry" in c for c in commands), commands
        for pid, (fields, ns, _argv) in jobs.seen.items():
            assert len(fields["NSpid"].split()) == 1, (pid, fields["NSpid"])  # no pid namespace
            assert ns["mnt"] == host["mnt"], (pid, ns)
            assert fields["NoNewPrivs"] == "1", (pid, fields)
            assert set(fields["Uid"].split()) == {str(gateway_uid())}, (pid, fields["Uid"])
        assert gateway.terminate() == 0
    finally:
        gateway.stop()


def test_restricted_gateway_state_survives_a_restart(
    fake_forge: FakeForge, state_dir: Path
) -> None:
    """The SQLite file the confined gateway writes is the host's, in place: the next start
    opens the same file (the same inode) and reports it in /info."""
    require_restricted_tier()
    gateway = _gateway(state_dir, fake_forge).start()
    try:
        database = state_dir / "auto-review.sqlite3"
        assert database.is_file(), sorted(state_dir.iterdir())
        assert database.stat().st_uid == gateway_uid()
        inode = database.stat().st_ino
        assert gateway.terminate() == 0
        gateway.start()
        assert database.stat().st_ino == inode, "the database was recreated on restart"
        stores = httpx.get(f"{gateway.url}/info", timeout=10).json()["stores"]
        assert stores["state"] == f"sqlite:{database}"
        assert gateway.terminate() == 0
    finally:
        gateway.stop()


def _run_once(state: Path, forge: FakeForge, log: Path) -> subprocess.CompletedProcess[str]:
    """Start the gateway expecting it not to serve: its exit status and output."""
    gateway = _gateway(state, forge, log=log)
    return subprocess.run(
        gateway.argv, env=gateway.env, capture_output=True, text=True, timeout=120, check=False
    )


@ROOT_ONLY
def test_restricted_gateway_as_root_refuses_a_state_dir_uid_65534_cannot_use(
    fake_forge: FakeForge, host_dir: Path
) -> None:
    """Root's restricted-tier gateway is uid 65534; a root-owned 0700 state dir is refused up
    front with exit 125 (docs/CLI.md), naming the directory and the fixes, and left as it was."""
    require_restricted_tier()
    state = host_dir / "state"
    state.mkdir(mode=0o700)
    done = _run_once(state, fake_forge, host_dir / "gateway.log")
    assert done.returncode == 125, done.stderr
    message = " ".join(done.stderr.split())
    assert str(state) in message, message
    assert f"chown {NOBODY}" in message, message
    assert f"setfacl -m u:{NOBODY}:rwX" in message, message
    assert "full tier" in message, message
    assert (state.stat().st_uid, state.stat().st_mode & 0o777) == (0, 0o700)
    assert list(state.iterdir()) == []


@ROOT_ONLY
def test_restricted_gateway_as_root_creates_a_missing_state_dir_for_uid_65534(
    fake_forge: FakeForge, host_dir: Path
) -> None:
    """The common path works: a state dir that does not exist yet is created 0700 and owned by
    uid 65534, which the launcher says; the gateway then serves from it."""
    require_restricted_tier()
    state = host_dir / "new" / "state"
    gateway = _gateway(state, fake_forge, log=host_dir / "gateway.log").start()
    try:
        info = state.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (NOBODY, NOBODY, 0o700)
        assert (state / "tmp").stat().st_uid == NOBODY
        assert (state / "auto-review.sqlite3").stat().st_uid == NOBODY
        assert f"owned by uid {NOBODY}" in " ".join(gateway.log.read_text().split())
        assert gateway.terminate() == 0
    finally:
        gateway.stop()


@ROOT_ONLY
def test_restricted_gateway_as_root_refuses_a_job_dir_parent_left_by_root(
    fake_forge: FakeForge, state_dir: Path, host_dir: Path
) -> None:
    """A state dir re-owned to 65534 without its contents (``chown`` without ``-R``) would
    start and then fail every review in its root-owned tmp/; the gateway refuses at start
    instead, naming the directory and ``chown -R``."""
    require_restricted_tier()
    (state_dir / "tmp").mkdir(mode=0o700)  # root's, as a start in the full tier leaves it
    done = _run_once(state_dir, fake_forge, host_dir / "gateway.log")
    assert done.returncode == 1, done.stderr  # the inner's StoreError, passed on (docs/CLI.md)
    message = " ".join(done.stderr.split())
    assert f"{state_dir / 'tmp'}: the gateway cannot write it" in message, message
    assert f"must belong to uid {NOBODY}" in message, message
    assert f"chown -R {NOBODY} {state_dir}" in message, message
    assert SECRET not in done.stderr

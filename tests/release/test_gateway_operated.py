"""The built gateway started the way operators start it, read back from the host through /proc.

- As the shipped systemd unit runs it (deploy/systemd/auto-review.service): an unprivileged
  ``User=``, a ``StateDirectory=`` it owns with mode 0700, ``UMask=0077``, working directory
  ``/``, the full tier (the default).
- With ``AR_ISOLATION=restricted`` started by root, for hosts without user namespaces: the
  gateway and its jobs are host uid 65534, and a missing state dir is created for that uid
  (docs/adr/0010).

Both post a CI-triggered review to the fake forge, with the clone and the analysis running as
jobs of the job server from the frozen build. Both need root (to switch user; to be the root
that the restricted tier turns into uid 65534) and skip, saying why, otherwise.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.proc_tree import JobSampler, children, inner_gateway, job_server, status
from tests.release._binary import host_environment
from tests.release._gateway import REPO, Scene, model_env, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

# Created (a system account, no home, no login) when the host has none; left in place for the
# next run, as scripts/test-unprivileged.sh leaves its user.
SERVICE_USER = "ar-service"
NOBODY = 65534
# systemd's default PATH for services.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAMESPACES = ("user", "mnt", "pid", "ipc", "uts")


@dataclass(frozen=True)
class _Install:
    """The built file installed where any user can run it (the original may sit under /root),
    and a host directory others can search, for the state dir and the log."""

    binary: Path
    host_dir: Path

    def run(self, runner: list[str], *args: str, home: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*runner, str(self.binary), *args],
            env=host_environment(HOME=home),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def install(release_binary: Path) -> Iterator[_Install]:
    if os.geteuid() != 0:
        pytest.skip(
            "needs root: to switch to the service user, or to be the root whose "
            "restricted-tier gateway becomes uid 65534"
        )
    directory = Path(tempfile.mkdtemp(prefix="ar-release-operated-", dir="/var/tmp"))
    try:
        directory.chmod(0o755)
        (directory / "bin").mkdir(mode=0o755)
        binary = directory / "bin" / "auto-review"
        shutil.copy2(release_binary, binary)
        binary.chmod(0o755)
        yield _Install(binary, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _service_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        pytest.skip(f"no user {SERVICE_USER} and no useradd to create it (apt-get install passwd)")
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        check=False,  # a concurrent run may have created it first: the lookup decides
    )
    return pwd.getpwnam(SERVICE_USER)


def _launcher(bootloader: int) -> int:
    """The one-file build's application process: the bootloader's one child."""
    [launcher] = children(bootloader)
    return launcher


def _namespaces(pid: int | str) -> dict[str, str]:
    return {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in _NAMESPACES}


def _review(gateway: GatewayProcess, scene: Scene, launcher: int) -> JobSampler:
    """A CI-triggered review end to end, sampling the job server's jobs while it runs; checks
    it was posted after fetching from the forge, and that git and the analysis ran as jobs."""
    with JobSampler(job_server(launcher)) as jobs:
        gateway.review_via_ci(scene.pull.number, scene.head(), limit_secs=120)
    repo = scene.forge.repo(REPO)
    assert len(repo.reviews) == 1
    assert [s.state for s in repo.statuses if s.sha == scene.head()][-1] == "success"
    fetches = [c for c in scene.forge.calls if c.path.endswith("/git-upload-pack")]
    assert fetches, "the review did not fetch from the forge"
    assert all(c.status == 200 for c in fetches)
    commands = [" ".join(argv) for _fields, _ns, argv in jobs.seen.values()]
    assert any(c.startswith("git ") for c in commands), commands
    assert any("auto_review.review._analysis:entry" in c for c in commands), commands
    return jobs


def test_release_gateway_as_the_systemd_service_user_runs_confined_in_the_full_tier(
    install: _Install, scene: Scene
) -> None:
    """The built gateway as ``User=`` of the shipped unit: it serves, reports the full tier,
    posts a review whose clone and analysis run in job sandboxes, keeps its state across a
    restart, and the host reads it confined: seccomp, no_new_privs, no capabilities, its own
    namespaces, and never root."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed (apt-get install util-linux)")
    account = _service_account()
    uid, gid = account.pw_uid, account.pw_gid
    runner = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
    checked = install.run(runner, "sandbox", "check", "--json", home=account.pw_dir)
    host = json.loads(checked.stdout)["host"]
    if host["best_tier"] != "full":
        missing = [
            f"{name}: {host[name]['detail']} (fix: {host[name]['fix']})"
            for name in ("user_namespaces", "seccomp")
            if not host[name]["available"]
        ]
        pytest.skip(f"this host cannot give {SERVICE_USER} the full tier: {'; '.join(missing)}")
    # StateDirectory=auto-review, StateDirectoryMode=0700: systemd makes it, owned by User=.
    state = install.host_dir / "lib" / "auto-review"
    state.mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    os.chown(state, uid, gid)
    gateway = GatewayProcess(
        state,
        forge_url=scene.forge.url,
        forge_token=scene.forge.bot_token,
        argv=(*runner, str(install.binary), "gateway"),
        env={
            **model_env(scene),
            "AR_ISOLATION": "full",
            "PATH": SERVICE_PATH,
            "HOME": account.pw_dir,
        },
        log=install.host_dir / "gateway.log",
        cwd=Path("/"),
        umask=0o077,
    )
    start(gateway)
    try:
        assert gateway.proc is not None
        assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
        isolation = httpx.get(f"{gateway.url}/info", timeout=10).json()["isolation"]
        assert (isolation["tier"], isolation["tier_requested"]) == ("full", "full"), isolation
        controls = isolation["controls"]
        for control in ("seccomp", "no_new_privs", "capabilities", "filesystem_view"):
            assert controls[control] == "on", (control, controls)
        for ns in _NAMESPACES:
            assert controls[f"{ns}_namespace"] == "on", (ns, controls)

        launcher = _launcher(gateway.proc.pid)
        inner = inner_gateway(launcher)
        # The host's reading of the confined gateway: what /info claims, held by the kernel.
        fields = status(inner)
        assert fields["Seccomp"] == "2", fields
        assert fields["NoNewPrivs"] == "1", fields
        assert int(fields["CapEff"], 16) == 0, fields
        mine = _namespaces("self")
        theirs = _namespaces(inner)
        for ns in _NAMESPACES:
            assert theirs[ns] != mine[ns], (ns, theirs, mine)
        # Every process of the service, as the host sees it, is the service user, never root.
        for pid in (gateway.proc.pid, launcher, job_server(launcher), inner):
            assert set(status(pid)["Uid"].split()) == {str(uid)}, (pid, status(pid)["Uid"])

        jobs = _review(gateway, scene, launcher)
        for pid, (seen, spaces, argv) in jobs.seen.items():
            assert seen["NoNewPrivs"] == "1", (pid, argv, seen)
            assert len(seen["NSpid"].split()) > 1, (pid, argv, seen["NSpid"])  # own pid ns
            assert spaces["mnt"] != mine["mnt"], (pid, argv, spaces)
            assert set(seen["Uid"].split()) == {str(uid)}, (pid, argv, seen["Uid"])

        database = state / "auto-review.sqlite3"
        inode = database.stat().st_ino
        assert gateway.terminate() == 0
        start(gateway)
        assert database.stat().st_ino == inode, "the database was recreated on restart"
        stores = httpx.get(f"{gateway.url}/info", timeout=10).json()["stores"]
        assert stores["state"] == f"sqlite:{database}"
        [job] = gateway.jobs()
        assert (job["state"], job["result"]) == ("done", "posted"), job
        assert gateway.terminate() == 0
        # Nothing the service wrote is root's or open to others: the unit's UMask=0077 held.
        assert (state.stat().st_uid, state.stat().st_mode & 0o777) == (uid, 0o700)
        for path in state.rglob("*"):
            info = path.lstat()
            assert info.st_uid == uid, (path, info.st_uid)
            assert info.st_mode & 0o077 == 0, (path, oct(info.st_mode))
    finally:
        stop(gateway)


def test_release_gateway_restricted_tier_as_root_runs_as_nobody_in_a_state_dir_it_creates(
    install: _Install, scene: Scene
) -> None:
    """``AR_ISOLATION=restricted`` started by root, in / under umask 0077, with no state dir
    (nor its parent) yet: it is created 0700 for uid 65534 below a 0755 parent, the gateway
    reports the restricted tier and posts a review, and the host reads the inner gateway and
    every job as uid 65534 under seccomp and no_new_privs."""
    checked = install.run([], "sandbox", "check", "--isolation", "restricted", home="/nonexistent")
    if checked.returncode != 0:
        pytest.skip(f"this host cannot give the restricted tier: {checked.stderr.strip()}")
    state = install.host_dir / "lib" / "auto-review"
    gateway = GatewayProcess(
        state,
        forge_url=scene.forge.url,
        forge_token=scene.forge.bot_token,
        argv=(str(install.binary), "gateway"),
        env={**model_env(scene), "AR_ISOLATION": "restricted", "HOME": "/root"},
        log=install.host_dir / "gateway.log",
        cwd=Path("/"),
        umask=0o077,
    )
    start(gateway)
    try:
        assert gateway.proc is not None
        info = state.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (NOBODY, NOBODY, 0o700)
        assert state.parent.stat().st_mode & 0o777 == 0o755  # made by this start, for that uid
        assert f"owned by uid {NOBODY}" in " ".join(gateway.log.read_text().split())
        assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
        isolation = httpx.get(f"{gateway.url}/info", timeout=10).json()["isolation"]
        assert (isolation["tier"], isolation["tier_requested"]) == ("restricted", "restricted")
        assert isolation["controls"]["seccomp"] == "on", isolation

        launcher = _launcher(gateway.proc.pid)
        fields = status(inner_gateway(launcher))
        assert set(fields["Uid"].split()) == set(fields["Gid"].split()) == {str(NOBODY)}, fields
        assert (fields["Seccomp"], fields["NoNewPrivs"]) == ("2", "1"), fields
        assert int(fields["CapEff"], 16) == 0, fields

        jobs = _review(gateway, scene, launcher)
        for pid, (seen, _spaces, argv) in jobs.seen.items():
            assert seen["NoNewPrivs"] == "1", (pid, argv, seen)
            assert set(seen["Uid"].split()) == {str(NOBODY)}, (pid, argv, seen["Uid"])
        assert (state / "auto-review.sqlite3").stat().st_uid == NOBODY
        assert gateway.terminate() == 0
    finally:
        stop(gateway)

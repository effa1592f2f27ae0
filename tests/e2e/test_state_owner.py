"""Root runs host-side commands on a state dir the gateway's service user owns (REDTEAM F60).

Each command runs as a process of its own (the switch to the owner is for the rest of the
process), from an installation the service uid can read (``gateway_bin``), on a state dir of a
throwaway uid under a directory others can search. Root only: nobody else may switch uids.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e._harness import finding, review_answer
from tests.e2e.gateway_python import gateway_bin, searchable_dir
from tests.fakes.forge import FakeForge
from tests.fakes.llm import ScriptedModel, ScriptedModelServer, reply

from auto_review.hosts import HeadSha, RepoRef
from auto_review.jobs import SqliteJobQueue
from auto_review.review import Trigger
from auto_review.store import DATABASE_NAME, Store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to another uid")

SERVICE_UID, SERVICE_GID = 4242, 4243  # no passwd entries: numeric ids throughout
_BUG = "return eval(c[k])"

# Wins the race F52 left: the database is checked, then the gateway swaps a symlink in before
# SQLite opens it. Here the check is simply skipped, so a planted symlink stands for the swap.
_RACE_LOST = (
    "import sys\n"
    "from auto_review import store\n"
    "store._refuse_planted = lambda path: None\n"
    "from auto_review.cli.main import main\n"
    "sys.argv = ['auto-review', *sys.argv[1:]]\n"
    "main()\n"
)


@pytest.fixture
def base() -> Iterator[Path]:
    with searchable_dir("ar-state-owner-") as path:
        yield path


def _service_state(base: Path) -> Path:
    state = base / "state"
    state.mkdir(mode=0o700)
    os.chown(state, SERVICE_UID, SERVICE_GID)
    return state


def _cli(
    state: Path, *args: str, code: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    python = str(gateway_bin() / "python")
    argv = [python, "-c", code, *args] if code else [python, "-m", "auto_review", *args]
    environ = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
    environ["AR_STATE_DIR"] = str(state)
    return subprocess.run(
        argv, env=environ, capture_output=True, text=True, timeout=300, check=False
    )


def _owners(state: Path) -> dict[str, tuple[int, int]]:
    found = {state.name: (state.stat().st_uid, state.stat().st_gid)}
    for path in state.rglob("*"):
        info = path.lstat()
        found[str(path.relative_to(state))] = (info.st_uid, info.st_gid)
    return found


def test_jobs_run_by_root_leave_every_file_of_the_state_dir_to_its_owner(base: Path) -> None:
    state = _service_state(base)
    listed = _cli(state, "jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    # A write too: refused by the queue, after the database was opened for writing.
    retried = _cli(state, "jobs", "retry", "7")
    assert retried.returncode == 1
    assert "7" in retried.stderr
    owners = _owners(state)
    assert DATABASE_NAME in owners
    assert set(owners.values()) == {(SERVICE_UID, SERVICE_GID)}, owners


def test_a_database_swapped_for_a_symlink_is_opened_only_with_the_owners_rights(
    base: Path,
) -> None:
    # Root's own database elsewhere, 0600, holding a job: what the swap would show the gateway.
    secret = base / "root-only.sqlite3"
    store = Store.open(secret)
    try:
        SqliteJobQueue(store).enqueue_review(
            RepoRef("root", "private"), 1, HeadSha("a" * 40), trigger=Trigger.CI, force=False
        )
    finally:
        store.close()
    os.chmod(secret, 0o600)
    before = secret.read_bytes()
    state = _service_state(base)
    (state / DATABASE_NAME).symlink_to(secret)
    os.lchown(state / DATABASE_NAME, SERVICE_UID, SERVICE_GID)
    listed = _cli(state, "jobs", "list", "--json", code=_RACE_LOST)
    assert listed.returncode == 1, listed.stdout
    assert "root/private" not in listed.stdout
    assert "cannot open database" in listed.stderr
    assert secret.read_bytes() == before
    assert sorted(p.name for p in base.iterdir()) == ["root-only.sqlite3", "state"]


def test_another_user_is_refused_a_state_dir_it_does_not_own(base: Path) -> None:
    state = _service_state(base)
    python = str(gateway_bin() / "python")
    done = subprocess.run(
        [python, "-m", "auto_review", "history", "list"],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "AR_STATE_DIR": str(state)},
        user=SERVICE_UID + 100,
        group=SERVICE_GID + 100,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert (
        f"error: the state directory {state} belongs to uid {SERVICE_UID}, not to this user "
        f"(uid {SERVICE_UID + 100}): run this command as uid {SERVICE_UID} (setpriv "
        f"--reuid={SERVICE_UID} --regid={SERVICE_GID} --clear-groups) or as root"
    ) in " ".join(done.stderr.split())
    assert list(state.iterdir()) == []


def test_review_once_run_by_root_reviews_as_the_state_dirs_owner(
    base: Path,
    fake_forge: FakeForge,
    scripted_model: ScriptedModel,
    scripted_model_server: ScriptedModelServer,
) -> None:
    # The switch is for the whole command: the clone and the sandboxed steps after it run as
    # the owner, as in its gateway, and must still work.
    fake_forge.create_repo("alice/kv", {"app/store.py": "def load(c, k):\n    return c[k]\n"})
    fake_forge.push("alice/kv", "f", {"app/store.py": f"def load(c, k):\n    {_BUG}\n"})
    number = fake_forge.open_pull("alice/kv", head="f", title="eval", author="alice").number
    answer = review_answer(finding("app/store.py", 2, _BUG, message="eval of stored data"))
    scripted_model.respond_with(lambda _r: reply(json.dumps(answer)))
    state = _service_state(base)
    env = {
        "FORGEJO_BASE_URL": fake_forge.url,
        "AR_FORGEJO_TOKEN": fake_forge.bot_token,
        "LLM_BASE_URL": scripted_model_server.base_url,
        "LLM_API_KEY": "sk-scripted-test-key-0123456789abcdef",
        "LLM_REASONING_MODEL": "scripted-reasoning",
        "AR_LOG_LEVEL": "error",
    }
    done = _cli(state, "review", "once", f"alice/kv#{number}", "--dry-run", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == "REQUEST_CHANGES"
    assert set(_owners(state).values()) == {(SERVICE_UID, SERVICE_GID)}

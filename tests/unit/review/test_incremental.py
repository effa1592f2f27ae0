"""The review's diff from the clone (``_incremental.since_diff`` and ``pr_diff`` via
``clone_workspace``): real git, a real smart-HTTP server, the sandboxed clone."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.review._git import git, make_repo
from tests.unit.review._githttp import GitServer, serve_git

from auto_review.errors import ReviewError
from auto_review.review import _incremental, _isolation, workspace
from auto_review.review.diff import parse_diff
from auto_review.review.workspace import Workspace, clone_workspace

TOKEN = "tok-" + "incr3m3nt" * 4
AUTH = "Authorization: Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()
APP = "def add(a, b):\n    return a + b\n"
BODY = "".join(f"line {i}\n" for i in range(40))


def _commit(work: Path, files: dict[str, str | bytes | None], message: str) -> str:
    for rel, content in files.items():
        path = work / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD").strip()


class Forge:
    """A work repository, its bare copy served over smart HTTP, and the clone's arguments."""

    def __init__(self, tmp_path: Path, server: GitServer) -> None:
        self.tmp, self.server = tmp_path, server
        self.work = tmp_path / "work"
        self.bare = tmp_path / "srv" / "o" / "r.git"

    def publish(self) -> None:
        """Make the bare repository from the work one: its refs and every object."""
        git(self.tmp, "clone", "-q", "--bare", str(self.work), str(self.bare))
        # As Gitea's global git config has it.
        git(self.bare, "config", "uploadpack.allowAnySHA1InWant", "true")

    def clone(
        self, head: str, since: str | None, base: str | None = None, merge_base: str | None = None
    ) -> Workspace:
        return clone_workspace(
            clone_url=f"{self.server.url}/o/r.git",
            auth_header=AUTH,
            head_sha=head,
            parent=self.tmp,
            timeout=60,
            max_bytes=32 * 1024 * 1024,
            since=since,
            base=base,
            merge_base=merge_base,
        )

    def forge_diff(self, base: str, head: str) -> str:
        """What the forge's ``pulls/{n}.diff`` gives: from the merge base (git diff there)."""
        fork = git(self.work, "merge-base", base, head).strip()
        return git(self.work, "diff", "--no-color", "-M", "--full-index", fork, head)


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    expected = "Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()
    (tmp_path / "srv" / "o").mkdir(parents=True)
    with serve_git(tmp_path / "srv", required_auth=expected) as server:
        f = Forge(tmp_path, server)
        make_repo(f.work, {"app.py": APP, "old_name.txt": BODY})
        git(f.work, "checkout", "-q", "-b", "feature")
        yield f


def test_the_diff_covers_only_what_changed_since_the_last_reviewed_head(forge: Forge) -> None:
    since = _commit(forge.work, {"app.py": APP.replace("+ b", "- b")}, "first")
    head = _commit(
        forge.work,
        {
            "new.py": "VALUE = 2\n",
            "old_name.txt": None,
            "new_name.txt": BODY,
            "logo.png": b"\x89PNG\0\1\2",
        },
        "second",
    )
    forge.publish()
    ws = forge.clone(head, since)
    try:
        assert ws.since_failure == ""
        assert ws.since_diff is not None
        # What the forge's .diff of the same range gives (git diff -M --full-index there).
        expected = git(forge.work, "diff", "--no-color", "-M", "--full-index", since, head)
        assert ws.since_diff == expected
        files = {f.path: f for f in parse_diff(ws.since_diff)}
        assert sorted(files) == ["logo.png", "new.py", "new_name.txt"]  # not app.py
        assert (files["new_name.txt"].status, files["new_name.txt"].old_path) == (
            "renamed",
            "old_name.txt",
        )
        assert files["logo.png"].binary
        assert ws.lines("new.py") == ["VALUE = 2"]  # the checkout is the head's, as without since
    finally:
        ws.close()


def test_a_force_pushed_head_still_on_the_forge_is_diffed_from_the_merge_base(
    forge: Forge,
) -> None:
    since = _commit(forge.work, {"app.py": APP.replace("+ b", "- b")}, "first")
    git(forge.work, "reset", "-q", "--hard", "main")
    head = _commit(forge.work, {"other.py": "X = 1\n"}, "rewritten")
    git(forge.work, "branch", "-q", "keep", since)  # so that the bare copy has the object ...
    forge.publish()
    git(forge.bare, "update-ref", "-d", "refs/heads/keep")  # ... which no ref reaches now
    ws = forge.clone(head, since)
    try:
        assert ws.since_diff is not None
        # merge-base(since, head) is main: the whole rewritten branch, none of the old commit.
        assert [f.path for f in parse_diff(ws.since_diff)] == ["other.py"]
    finally:
        ws.close()


def test_a_force_pushed_head_the_forge_collected_gives_no_diff_and_a_reason(
    forge: Forge,
) -> None:
    since = _commit(forge.work, {"app.py": APP.replace("+ b", "- b")}, "first")
    git(forge.work, "reset", "-q", "--hard", "main")
    head = _commit(forge.work, {"other.py": "X = 1\n"}, "rewritten")
    forge.publish()
    git(forge.bare, "reflog", "expire", "--expire=now", "--all")
    git(forge.bare, "gc", "-q", "--prune=now")
    assert git(forge.bare, "cat-file", "-t", head).strip() == "commit"  # positive control
    ws = forge.clone(head, since)
    try:
        assert ws.since_diff is None
        assert ws.since_failure.startswith("the last reviewed head could not be fetched")
        assert ws.lines("other.py") == ["X = 1"]  # the checkout itself did not suffer
    finally:
        ws.close()


def test_more_new_commits_than_the_fetched_depth_gives_no_diff(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_incremental, "SINCE_DEPTH", 2)
    since = _commit(forge.work, {"a.py": "A = 0\n"}, "reviewed")
    for i in range(1, 4):
        head = _commit(forge.work, {"a.py": f"A = {i}\n"}, f"new {i}")
    forge.publish()
    ws = forge.clone(head, since)
    try:
        assert ws.since_diff is None
        assert ws.since_failure.startswith("no merge base within 2 commits")
    finally:
        ws.close()
    ws = forge.clone(head, git(forge.work, "rev-parse", "HEAD~1").strip())  # within the depth
    try:
        assert ws.since_diff is not None
        assert "+A = 3" in ws.since_diff
    finally:
        ws.close()


def test_the_prs_own_gitattributes_cannot_hide_its_changes_as_binary(forge: Forge) -> None:
    since = _commit(forge.work, {"app.py": APP.replace("+ b", "- b")}, "first")
    head = _commit(
        forge.work, {".gitattributes": "* -diff\n", "app.py": "import os\n" + APP}, "hide"
    )
    forge.publish()
    ws = forge.clone(head, since)
    try:
        assert ws.since_diff is not None
        assert "Binary files" not in ws.since_diff
        assert "+import os" in ws.since_diff
    finally:
        ws.close()


def test_a_since_that_is_no_object_id_runs_no_git_for_it(forge: Forge) -> None:
    head = _commit(forge.work, {"a.py": "A = 1\n"}, "one")
    forge.publish()
    before = len(forge.server.auth_seen)
    ws = forge.clone(head, "--upload-pack=touch /tmp/x")
    try:
        assert ws.since_diff is None
        assert "not a full hexadecimal object id" in ws.since_failure
        plain = len(forge.server.auth_seen) - before
    finally:
        ws.close()
    ws = forge.clone(head, None)  # the same clone without since makes as many requests
    try:
        assert len(forge.server.auth_seen) - before - plain == plain
    finally:
        ws.close()


def test_a_slow_incremental_step_leaves_the_checkout_its_time(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = _commit(forge.work, {"a.py": "A = 1\n"}, "one")
    forge.publish()

    def stalls(git: _incremental.GitStep, **_kw: object) -> _incremental.SinceDiff:
        # Whatever the step's share of the deadline, it is used up; its next command refused.
        deadline = git.deadline  # type: ignore[attr-defined]
        time.sleep(max(0.0, deadline - time.monotonic()) + 0.1)
        try:
            git("rev-parse", "HEAD")
        except ReviewError as exc:
            return _incremental.SinceDiff(None, exc.message)
        raise AssertionError("the step's deadline was not enforced")

    monkeypatch.setattr(workspace, "since_diff", stalls)
    ws = clone_workspace(
        clone_url=f"{forge.server.url}/o/r.git",
        auth_header=AUTH,
        head_sha=head,
        parent=forge.tmp,
        timeout=8,
        max_bytes=32 * 1024 * 1024,
        since=head,
    )
    try:
        assert ws.since_failure == "clone deadline passed"
        assert ws.lines("a.py") == ["A = 1"]
    finally:
        ws.close()


def test_the_whole_prs_diff_is_the_forges_byte_for_byte(forge: Forge) -> None:
    """closes F77: the first review's diff comes from the clone at the head, not the forge."""
    _commit(forge.work, {"app.py": APP.replace("+ b", "- b")}, "first")
    head = _commit(
        forge.work,
        {
            "new.py": "VALUE = 2\n",
            "old_name.txt": None,
            "new_name.txt": BODY,
            "logo.png": b"\x89PNG\0\1",
        },
        "second",
    )
    git(forge.work, "checkout", "-q", "main")  # the base branch moves on after the fork
    base = _commit(forge.work, {"later.py": "LATER = 1\n"}, "on main")
    forge.publish()
    ws = forge.clone(head, None, base)
    try:
        assert ws.pr_diff_failure == ""
        assert ws.pr_diff == forge.forge_diff(base, head)
        files = {f.path: f for f in parse_diff(ws.pr_diff)}
        assert sorted(files) == ["app.py", "logo.png", "new.py", "new_name.txt"]  # no later.py
        assert files["new_name.txt"].old_path == "old_name.txt"
        assert ws.since_diff is None
        listed = git(forge.work, "ls-tree", "-r", head).splitlines()
        assert ws.tree == {ln.split("\t")[1]: ln.split()[2] for ln in listed}
    finally:
        ws.close()


def test_a_failed_incremental_diff_leaves_the_whole_prs_from_the_clone(forge: Forge) -> None:
    since = _commit(forge.work, {"app.py": APP.replace("+ b", "- b")}, "first")
    git(forge.work, "reset", "-q", "--hard", "main")
    head = _commit(forge.work, {"other.py": "X = 1\n"}, "rewritten")
    base = git(forge.work, "rev-parse", "main").strip()
    forge.publish()
    git(forge.bare, "reflog", "expire", "--expire=now", "--all")
    git(forge.bare, "gc", "-q", "--prune=now")  # the old head is gone
    ws = forge.clone(head, since, base)
    try:
        assert ws.since_diff is None
        assert ws.pr_diff == forge.forge_diff(base, head)
    finally:
        ws.close()
    ws = forge.clone(head, head, base)  # an incremental diff that works: no whole one
    try:
        assert (ws.since_diff, ws.pr_diff) == ("", None)
    finally:
        ws.close()


def test_a_base_beyond_the_fetched_history_gives_no_whole_diff(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_incremental, "BASE_DEPTH", 2)
    for i in range(3):
        head = _commit(forge.work, {"a.py": f"A = {i}\n"}, f"commit {i}")
    base = git(forge.work, "rev-parse", "main").strip()
    forge.publish()
    ws = forge.clone(head, None, base)
    try:
        assert ws.pr_diff is None
        assert ws.pr_diff_failure.startswith("no merge base within 2 commits")
        assert ws.lines("a.py") == ["A = 2"]
    finally:
        ws.close()
    monkeypatch.setattr(_incremental, "BASE_DEPTH", 4)  # positive control
    ws = forge.clone(head, None, base)
    try:
        assert ws.pr_diff == forge.forge_diff(base, head)
    finally:
        ws.close()


def test_a_whole_diff_over_the_git_steps_output_cap_gives_none(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = _commit(forge.work, {"big.py": "".join(f"V{i} = {i}\n" for i in range(2000))}, "big")
    base = git(forge.work, "rev-parse", "main").strip()
    forge.publish()
    monkeypatch.setattr(_isolation, "_MAX_CAPTURE", 8 * 1024)
    ws = forge.clone(head, None, base)
    try:
        assert ws.pr_diff is None
        assert ws.pr_diff_failure.startswith("the whole PR's diff failed")
    finally:
        ws.close()


def test_the_prs_own_gitattributes_cannot_hide_its_whole_diff_as_binary(forge: Forge) -> None:
    head = _commit(
        forge.work, {".gitattributes": "* -diff\n", "app.py": "import os\n" + APP}, "hide"
    )
    base = git(forge.work, "rev-parse", "main").strip()
    forge.publish()
    ws = forge.clone(head, None, base)
    try:
        assert ws.pr_diff is not None
        assert "Binary files" not in ws.pr_diff
        assert "+import os" in ws.pr_diff
    finally:
        ws.close()


def _forked_long_ago(forge: Forge) -> tuple[str, str, str]:
    """An old PR branch (two commits) and a base branch five commits further on since the fork:
    the head, the base commit and their merge base (the forge's ``merge_base``)."""
    _commit(forge.work, {"app.py": APP.replace("+ b", "- b")}, "first")
    head = _commit(forge.work, {"old_name.txt": None, "new_name.txt": BODY}, "second")
    git(forge.work, "checkout", "-q", "main")
    fork = git(forge.work, "rev-parse", "HEAD").strip()
    for i in range(5):
        base = _commit(forge.work, {"later.py": f"LATER = {i}\n"}, f"on main {i}")
    forge.publish()
    return head, base, fork


def test_the_forges_merge_base_gives_the_whole_diff_however_far_the_base_moved_on(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PR forked further back than the deep fetch reaches still gets the clone's diff (bound)
    when the forge gives the merge base: git diffs two trees, it needs no history."""
    monkeypatch.setattr(_incremental, "BASE_DEPTH", 2)
    head, base, fork = _forked_long_ago(forge)
    ws = forge.clone(head, None, base, merge_base=fork)
    try:
        assert ws.pr_diff_failure == ""
        assert ws.pr_diff == forge.forge_diff(base, head)
        assert sorted(f.path for f in parse_diff(ws.pr_diff)) == ["app.py", "new_name.txt"]
        assert ws.lines("app.py") == APP.replace("+ b", "- b").splitlines()
    finally:
        ws.close()
    ws = forge.clone(head, None, base)  # without it, today's walk: too shallow, no diff
    try:
        assert ws.pr_diff is None
        assert ws.pr_diff_failure.startswith("no merge base within 2 commits")
    finally:
        ws.close()


def test_a_forge_merge_base_that_is_no_commit_or_gone_gives_no_diff(forge: Forge) -> None:
    head, base, fork = _forked_long_ago(forge)
    blob = git(forge.work, "rev-parse", f"{fork}:app.py").strip()
    ws = forge.clone(head, None, base, merge_base=blob)
    try:
        assert ws.pr_diff is None
        assert ws.pr_diff_failure.startswith("the forge's merge base is not a commit")
    finally:
        ws.close()
    ws = forge.clone(head, None, base, merge_base="0123456789" * 4)
    try:
        assert ws.pr_diff is None
        assert ws.pr_diff_failure.startswith("the forge's merge base could not be fetched")
        assert ws.lines("app.py") is not None  # the checkout itself did not suffer
    finally:
        ws.close()

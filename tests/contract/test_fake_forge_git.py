"""Fake-forge repositories are real: cloned over smart HTTP with the token, refused without."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.fakes.forge import FakeForge
from tests.fakes.forge_git import Symlink
from tests.fakes.forge_state import PullRecord


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd or Path("/nonexistent")),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "LC_ALL": "C",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )


def test_clone_from_fake_forge_succeeds_with_the_token_header(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    header = f"http.extraHeader=Authorization: token {fake_forge.bot_token}"
    url = f"{fake_forge.url}/alice/demo.git"
    proc = _git("-c", header, "clone", "--quiet", "--branch", "feature", url, str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c" / "src" / "new.py").read_text() == "VALUE = 1\n"
    head = _git("rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip()
    assert head == fake_forge.repo("alice/demo").git.resolve("refs/heads/feature")


def test_clone_from_fake_forge_is_refused_without_the_token(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    proc = _git("clone", "--quiet", f"{fake_forge.url}/alice/demo.git", str(tmp_path / "c"))
    assert proc.returncode != 0
    assert not (tmp_path / "c" / "README.md").exists()
    refused = [c for c in fake_forge.calls if c.route.startswith("GET /{owner}/{repo}.git")]
    assert refused
    assert all(c.status == 401 for c in refused)
    assert refused[0].headers["www-authenticate"] == 'Basic realm="Gitea"'


def test_clone_from_fake_forge_is_refused_with_a_wrong_token(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    header = "http.extraHeader=Authorization: token 0000000000000000000000000000000000000000"
    proc = _git("-c", header, "clone", f"{fake_forge.url}/alice/demo.git", str(tmp_path / "c"))
    assert proc.returncode != 0
    assert not (tmp_path / "c" / "README.md").exists()
    git_calls = [c for c in fake_forge.calls if c.route.startswith("GET /{owner}/{repo}.git")]
    assert git_calls
    assert all(c.status == 401 for c in git_calls)


def test_fetch_of_a_single_sha_works_for_shallow_clones(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    sha = fake_forge.repo("alice/demo").git.resolve("refs/heads/feature")
    assert sha is not None
    work = tmp_path / "w"
    work.mkdir()
    header = f"http.extraHeader=Authorization: token {fake_forge.bot_token}"
    assert _git("init", "--quiet", cwd=work).returncode == 0
    proc = _git(
        "-c", header, "fetch", "--depth=1", f"{fake_forge.url}/alice/demo.git", sha, cwd=work
    )
    assert proc.returncode == 0, proc.stderr
    assert _git("cat-file", "-t", sha, cwd=work).stdout.strip() == "commit"


def test_fetch_of_a_sha_no_ref_reaches_works_like_gitea(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    """Gitea sets uploadpack.allowAnySHA1InWant (for partial clones): a force-pushed-away head
    stays fetchable by SHA until gc. Protocol v0, where git itself enforces the setting."""
    repo = fake_forge.repo("alice/demo")
    old = fake_forge.push("alice/demo", "gone", {"a.txt": "old\n"})
    repo.git.git("update-ref", "-d", "refs/heads/gone")
    work = tmp_path / "w"
    work.mkdir()
    header = f"http.extraHeader=Authorization: token {fake_forge.bot_token}"
    assert _git("init", "--quiet", cwd=work).returncode == 0
    url = f"{fake_forge.url}/alice/demo.git"
    for version in ("0", "2"):
        proc = _git(
            "-c", header, "-c", f"protocol.version={version}",
            "fetch", "--depth=1", url, old, cwd=work,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    assert _git("cat-file", "-t", old, cwd=work).stdout.strip() == "commit"


def test_push_to_fake_forge_is_refused_for_a_read_only_user_and_allowed_for_the_owner(
    fake_forge: FakeForge, forge_repo: PullRecord, tmp_path: Path
) -> None:
    url = f"{fake_forge.url}/alice/demo.git"
    owner = f"http.extraHeader=Authorization: token {fake_forge.token_for('alice')}"
    reader = f"http.extraHeader=Authorization: token {fake_forge.token_for('carol')}"
    assert _git("-c", owner, "clone", "--quiet", url, str(tmp_path / "c")).returncode == 0
    work = tmp_path / "c"
    (work / "more.txt").write_text("more\n")
    _git("add", "more.txt", cwd=work)
    _git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "more", cwd=work)
    denied = _git("-c", reader, "push", "origin", "HEAD:main", cwd=work)
    assert denied.returncode != 0
    allowed = _git("-c", owner, "push", "origin", "HEAD:main", cwd=work)
    assert allowed.returncode == 0, allowed.stderr
    assert fake_forge.repo("alice/demo").git.read_file("main", "more.txt") == b"more\n"


def test_fake_forge_pull_diff_tracks_pushes_to_the_head_branch(
    fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    repo = fake_forge.repo("alice/demo")
    before = fake_forge.state.pull_diff(repo, forge_repo)
    fake_forge.push("alice/demo", "feature", {"src/new.py": "VALUE = 2\n", "link": Symlink("/etc")})
    after = fake_forge.state.pull_diff(repo, forge_repo)
    assert "+VALUE = 1" in before
    assert "+VALUE = 2" in after
    assert "new file mode 120000" in after

"""Build real unified diffs with git, for tests: two trees in, ``git diff`` out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["git", "git_env", "make_repo", "real_diff"]


def git_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }


def git(repo: Path, *args: str, input_text: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env=git_env(),
        input=input_text,
    ).stdout


def _write(repo: Path, files: dict[str, str | None]) -> None:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            if path.exists():
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def make_repo(root: Path, before: dict[str, str | None]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    _write(root, before)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", "base")
    return root


def real_diff(root: Path, before: dict[str, str | None], after: dict[str, str | None]) -> str:
    """Commit ``before``, apply ``after`` (None deletes), return ``git diff`` of the change."""
    make_repo(root, before)
    _write(root, after)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "change")
    return git(root, "diff", "-M", "HEAD~1", "HEAD")

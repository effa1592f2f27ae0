"""Real git repositories for the fake forge: bare repos written with plumbing, no worktree.

Every git call runs with a hermetic environment (no system or global config, no prompts), so a
developer's ``~/.gitconfig`` cannot change what tests see.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileSpec", "GitRepo", "Symlink", "git_env"]


@dataclass(frozen=True)
class Symlink:
    """A file entry that is a symbolic link to ``target``."""

    target: str


# A file's new content; ``None`` deletes the path.
FileSpec = str | bytes | Symlink | None


def git_env(home: Path) -> dict[str, str]:
    """Environment for git subprocesses that ignores every user and system setting."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Fake Forge",
        "GIT_AUTHOR_EMAIL": "fake@forge.invalid",
        "GIT_COMMITTER_NAME": "Fake Forge",
        "GIT_COMMITTER_EMAIL": "fake@forge.invalid",
    }


class GitRepo:
    """A bare repository at ``path``; helpers to commit file dicts and compute diffs."""

    def __init__(self, path: Path, *, home: Path) -> None:
        self.path = path
        self._env = git_env(home)
        self._clock = 1_700_000_000  # fixed, increasing commit dates keep SHAs reproducible

    def git(
        self, *args: str, input_bytes: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        """Run git in the bare repo; return stdout as text; raise on failure."""
        return self.git_bytes(*args, input_bytes=input_bytes, env=env).decode("utf-8", "replace")

    def git_bytes(
        self, *args: str, input_bytes: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> bytes:
        """Run git in the bare repo; return raw stdout; raise ``RuntimeError`` on failure."""
        proc = subprocess.run(
            ["git", f"--git-dir={self.path}", *args],
            input=input_bytes,
            capture_output=True,
            env={**self._env, **(env or {})},
            check=False,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def init(self, default_branch: str) -> None:
        """Create the bare repository."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "git",
                "init",
                "--bare",
                "--quiet",
                f"--initial-branch={default_branch}",
                str(self.path),
            ],
            env=self._env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        # Smart HTTP serves every repo of the fake; the flag file is git's opt-in for that.
        (self.path / "git-daemon-export-ok").touch()

    def resolve(self, ref: str) -> str | None:
        """The commit SHA ``ref`` names, or ``None``."""
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
        except RuntimeError:
            return None

    def branches(self) -> list[str]:
        """Branch names."""
        out = self.git("for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return [line for line in out.splitlines() if line]

    def commit(
        self,
        branch: str,
        files: Mapping[str, FileSpec],
        *,
        message: str,
        parent: str | None = None,
    ) -> str:
        """Commit ``files`` on top of ``parent`` (default: the branch tip) and move the branch."""
        base = parent if parent is not None else self.resolve(f"refs/heads/{branch}")
        index = self.path / f"index-{os.getpid()}-{branch.replace('/', '_')}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            if base is not None:
                self.git("read-tree", base, env=env)
            else:
                self.git("read-tree", "--empty", env=env)
            for name, spec in files.items():
                self._stage(name, spec, env)
            tree = self.git("write-tree", env=env).strip()
        finally:
            index.unlink(missing_ok=True)
        self._clock += 60
        date = f"{self._clock} +0000"
        parents = ["-p", base] if base is not None else []
        sha = self.git(
            "commit-tree",
            tree,
            *parents,
            "-m",
            message,
            env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
        ).strip()
        self.git("update-ref", f"refs/heads/{branch}", sha)
        return sha

    def _stage(self, name: str, spec: FileSpec, env: Mapping[str, str]) -> None:
        if spec is None:
            # --index-info with mode 0 removes the entry; --force-remove needs a work tree.
            line = f"0 {'0' * 40}\t{name}\n".encode()
            self.git("update-index", "--index-info", input_bytes=line, env=env)
            return
        if isinstance(spec, Symlink):
            mode, data = "120000", spec.target.encode()
        else:
            mode, data = "100644", spec.encode() if isinstance(spec, str) else spec
        blob = self.git("hash-object", "-w", "--stdin", input_bytes=data).strip()
        self.git("update-index", "--add", "--cacheinfo", f"{mode},{blob},{name}", env=env)

    def merge_base(self, base: str, head: str) -> str:
        """The merge base of two commits."""
        return self.git("merge-base", base, head).strip()

    def diff(self, base: str, head: str) -> str:
        """Unified diff ``base..head`` as Forgejo renders ``.diff`` (rename detection on)."""
        return self.git("diff", "--no-color", "--no-ext-diff", "-M", "--full-index", base, head)

    def file_diff(self, base: str, head: str, path: str) -> str:
        """Unified diff of one path (new name) between two commits."""
        return self.git("diff", "--no-color", "--no-ext-diff", "-M", base, head, "--", path)

    def changed_files(self, base: str, head: str) -> list[dict[str, object]]:
        """Per-file status and line counts between two commits, in git's order."""
        status_out = self.git("diff", "--name-status", "-M", "-z", base, head).split("\0")
        numstat_out = self.git("diff", "--numstat", "-M", "-z", base, head).split("\0")
        counts = _parse_numstat(numstat_out)
        files: list[dict[str, object]] = []
        i = 0
        while i < len(status_out) and status_out[i]:
            code = status_out[i]
            if code.startswith(("R", "C")):
                old, new = status_out[i + 1], status_out[i + 2]
                i += 3
            else:
                old, new = status_out[i + 1], status_out[i + 1]
                i += 2
            additions, deletions = counts.get(new, (0, 0))
            files.append(
                {
                    "code": code[0],
                    "filename": new,
                    "previous_filename": old if old != new else None,
                    "additions": additions,
                    "deletions": deletions,
                }
            )
        return files

    def read_file(self, ref: str, path: str) -> bytes | None:
        """Contents of ``path`` at ``ref``, or ``None`` when absent or not a file."""
        sha = self.resolve(ref)
        if sha is None:
            return None
        try:
            kind = self.git("cat-file", "-t", f"{sha}:{path}").strip()
        except RuntimeError:
            return None
        if kind != "blob":
            return None
        return self.git_bytes("cat-file", "blob", f"{sha}:{path}")

    def commits_between(self, base: str, head: str) -> list[str]:
        """SHAs reachable from ``head`` but not ``base``, oldest first."""
        out = self.git("rev-list", "--reverse", f"{base}..{head}")
        return [line for line in out.splitlines() if line]


def _parse_numstat(fields: list[str]) -> dict[str, tuple[int, int]]:
    # -z numstat: "A\tD\tpath" or, for renames, "A\tD\t" followed by old and new path fields.
    counts: dict[str, tuple[int, int]] = {}
    i = 0
    while i < len(fields) and fields[i]:
        add, dele, path = fields[i].split("\t", 2)
        if path == "":
            path = fields[i + 2]
            i += 3
        else:
            i += 1
        counts[path] = (int(add) if add != "-" else 0, int(dele) if dele != "-" else 0)
    return counts

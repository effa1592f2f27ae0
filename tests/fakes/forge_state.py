"""In-memory state of the fake forge: users, repositories (real git), PRs, comments, reviews.

All mutation goes through ``ForgeState`` under one lock, because the HTTP server thread and the
test thread both touch it. Tests read the public attributes directly to assert what was posted.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.forge_diff import diff_line_sets, hunk_around
from tests.fakes.forge_git import FileSpec, GitRepo
from tests.fakes.forge_records import (
    ForgeError,
    HookRecord,
    IssueCommentRecord,
    PullRecord,
    RepoRecord,
    ReviewCommentRecord,
    ReviewRecord,
    StatusRecord,
    TokenRecord,
    UserRecord,
)

__all__ = [
    "VALID_TOKEN_SCOPES",
    "ForgeError",
    "ForgeState",
    "HookRecord",
    "IssueCommentRecord",
    "PullRecord",
    "RepoRecord",
    "ReviewCommentRecord",
    "ReviewRecord",
    "StatusRecord",
    "TokenRecord",
    "UserRecord",
]

# Gitea 1.22 token scope names (models/auth/access_token_scope.go); anything else is a 400.
_SCOPE_CATEGORIES = (
    "activitypub",
    "admin",
    "issue",
    "misc",
    "notification",
    "organization",
    "package",
    "repository",
    "user",
)
VALID_TOKEN_SCOPES = frozenset(
    {"all"} | {f"{mode}:{cat}" for mode in ("read", "write") for cat in _SCOPE_CATEGORIES}
)
_REVIEW_EVENTS = {"APPROVED", "REQUEST_CHANGES", "COMMENT", "PENDING", ""}
_COMMIT_STATES = {"pending", "success", "error", "failure", "warning"}


class ForgeState:
    """Everything the fake forge knows. Times come from a deterministic clock (+1 s per event)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()
        self.users: dict[str, UserRecord] = {}
        self.tokens: list[TokenRecord] = []
        self.repos: dict[str, RepoRecord] = {}
        # Gitea's MAX_RESPONSE_ITEMS: larger ``limit`` values are clamped to it.
        self.max_page_size = 50
        self._ids: dict[str, int] = {}
        self._now = datetime(2026, 1, 1, tzinfo=UTC)
        self._git_home = root / "home"
        self._git_home.mkdir(parents=True, exist_ok=True)

    # -- clock and ids ------------------------------------------------------------------------
    def now(self) -> datetime:
        """Advance the fake clock by one second and return it."""
        with self.lock:
            self._now += timedelta(seconds=1)
            return self._now

    def advance_clock(self, seconds: float) -> None:
        """Move the fake clock forward (e.g. to separate ``since`` windows)."""
        with self.lock:
            self._now += timedelta(seconds=seconds)

    def next_id(self, kind: str) -> int:
        """Next id of a kind; ids are global per kind like Forgejo's table ids."""
        with self.lock:
            self._ids[kind] = self._ids.get(kind, 0) + 1
            return self._ids[kind]

    # -- users and tokens ---------------------------------------------------------------------
    def add_user(self, login: str, *, password: str = "", is_admin: bool = False) -> UserRecord:
        """Create a user (idempotent by login; a given password replaces the old one)."""
        with self.lock:
            if login in self.users and password:
                self.users[login].password = password
            if login not in self.users:
                self.users[login] = UserRecord(
                    self.next_id("user"),
                    login,
                    password or secrets.token_hex(8),
                    full_name=login.title(),
                    is_admin=is_admin,
                )
            return self.users[login]

    def add_token(self, login: str, name: str, scopes: list[str]) -> TokenRecord:
        """Mint a token for ``login``; 400 on a reused name or an unknown scope."""
        with self.lock:
            if any(t.owner == login and t.name == name for t in self.tokens):
                raise ForgeError(400, "access token name has been used already")
            bad = [s for s in scopes if s not in VALID_TOKEN_SCOPES]
            if bad:
                raise ForgeError(400, f"invalid access token scope: {bad[0]}")
            token = TokenRecord(self.next_id("token"), login, name, secrets.token_hex(20), scopes)
            self.tokens.append(token)
            return token

    def user_for_token(self, value: str) -> UserRecord | None:
        """The user a token belongs to."""
        with self.lock:
            for token in self.tokens:
                if secrets.compare_digest(token.sha1, value):
                    return self.users[token.owner]
            return None

    def user_for_password(self, login: str, password: str) -> UserRecord | None:
        """The user when ``password`` is their password (Basic auth)."""
        with self.lock:
            user = self.users.get(login)
            if user is not None and secrets.compare_digest(user.password, password):
                return user
            return None

    # -- repositories -------------------------------------------------------------------------
    def create_repo(
        self,
        owner: str,
        name: str,
        files: Mapping[str, FileSpec],
        *,
        private: bool = False,
        default_branch: str = "main",
        message: str = "initial commit",
    ) -> RepoRecord:
        """A repository whose default branch holds one commit with ``files``."""
        with self.lock:
            self.add_user(owner)
            key = f"{owner}/{name}"
            if key in self.repos:
                raise ValueError(f"repository {key} exists")
            git = GitRepo(self.root / "git" / owner / f"{name}.git", home=self._git_home)
            git.init(default_branch)
            git.commit(default_branch, files, message=message)
            repo = RepoRecord(
                self.next_id("repo"), owner, name, private, default_branch, git, self.now()
            )
            self.repos[key] = repo
            return repo

    def repo(self, owner: str, name: str) -> RepoRecord:
        """The repository or a 404."""
        with self.lock:
            repo = self.repos.get(f"{owner}/{name}")
            if repo is None:
                raise ForgeError(404, "repository does not exist")
            return repo

    def permission(self, repo: RepoRecord, login: str | None) -> str:
        """none | read | write | admin | owner, the way Forgejo computes it for this fake."""
        if login is None:
            return "none" if repo.private else "read"
        user = self.users.get(login)
        if login == repo.owner:
            return "owner"
        if user is not None and user.is_admin:
            return "admin"
        granted = repo.collaborators.get(login)
        if granted is not None:
            return granted
        return "none" if repo.private else "read"

    # -- pull requests ------------------------------------------------------------------------
    def open_pull(
        self, repo: RepoRecord, *, head: str, base: str, title: str, body: str, user: str
    ) -> PullRecord:
        """A new open PR ``base <- head``; both branches must exist."""
        with self.lock:
            for ref in (head, base):
                if repo.git.resolve(f"refs/heads/{ref}") is None:
                    raise ForgeError(404, f"branch {ref} does not exist")
            self.add_user(user)
            number = repo.next_index
            repo.next_index += 1
            now = self.now()
            pull = PullRecord(
                self.next_id("pull"), number, user, title, body, head, base, "open", now, now
            )
            repo.pulls[number] = pull
            return pull

    def pull(self, repo: RepoRecord, number: int) -> PullRecord:
        """The PR or a 404."""
        with self.lock:
            pull = repo.pulls.get(number)
            if pull is None:
                raise ForgeError(404, "pull request does not exist")
            return pull

    def head_sha(self, repo: RepoRecord, pull: PullRecord) -> str:
        """Tip of the head branch while open (pushes move it), frozen once closed."""
        if pull.closed_head_sha is not None:
            return pull.closed_head_sha
        sha = repo.git.resolve(f"refs/heads/{pull.head_ref}")
        if sha is None:
            raise ForgeError(404, "head branch is gone")
        return sha

    def base_sha(self, repo: RepoRecord, pull: PullRecord) -> str:
        """Tip of the base branch."""
        sha = repo.git.resolve(f"refs/heads/{pull.base_ref}")
        if sha is None:
            raise ForgeError(404, "base branch is gone")
        return sha

    def merge_base(self, repo: RepoRecord, pull: PullRecord) -> str:
        """Where the PR's diff starts (Forgejo diffs merge-base...head)."""
        return repo.git.merge_base(self.base_sha(repo, pull), self.head_sha(repo, pull))

    def pull_diff(self, repo: RepoRecord, pull: PullRecord) -> str:
        """The PR's unified diff."""
        return repo.git.diff(self.merge_base(repo, pull), self.head_sha(repo, pull))

    def close_pull(self, repo: RepoRecord, pull: PullRecord, *, merged: bool = False) -> None:
        """Close (or mark merged) a PR."""
        with self.lock:
            pull.closed_head_sha = self.head_sha(repo, pull)
            pull.state = "closed"
            pull.merged = merged
            pull.updated_at = self.now()

    # -- conversation -------------------------------------------------------------------------
    def add_issue_comment(
        self, repo: RepoRecord, number: int, user: str, body: str
    ) -> IssueCommentRecord:
        """A PR conversation comment."""
        with self.lock:
            self.pull(repo, number)
            if not body.strip():
                raise ForgeError(422, "body is empty")
            now = self.now()
            comment = IssueCommentRecord(self.next_id("comment"), number, user, body, now, now)
            repo.issue_comments.append(comment)
            return comment

    def create_review(
        self,
        repo: RepoRecord,
        pull: PullRecord,
        *,
        user: str,
        event: str,
        body: str,
        commit_id: str,
        comments: list[dict[str, object]],
    ) -> ReviewRecord:
        """A submitted review; 422 for what Forgejo refuses (lines outside the diff, etc.)."""
        with self.lock:
            event = event.upper()
            if event not in _REVIEW_EVENTS:
                raise ForgeError(422, f"unknown review event {event!r}")
            state = event or "PENDING"
            if state in ("APPROVED", "REQUEST_CHANGES") and user == pull.user:
                raise ForgeError(422, "reviewing your own pull request is not allowed")
            if state == "COMMENT" and not body.strip() and not comments:
                raise ForgeError(422, "review event COMMENT requires a body or a comment")
            head = self.head_sha(repo, pull)
            commit = commit_id or head
            if repo.git.resolve(commit) is None:
                raise ForgeError(422, "commit_id does not exist")
            base = self.merge_base(repo, pull)
            review = ReviewRecord(
                self.next_id("review"), pull.number, user, state, body, commit, self.now()
            )
            for raw in comments:
                review.comments.append(
                    self._review_comment(
                        repo, review=review, raw=raw, base=base, commit=commit, user=user
                    )
                )
            repo.reviews.append(review)
            return review

    def _review_comment(
        self,
        repo: RepoRecord,
        *,
        review: ReviewRecord,
        raw: dict[str, object],
        base: str,
        commit: str,
        user: str,
    ) -> ReviewCommentRecord:
        path, body = raw.get("path"), raw.get("body")
        new_line, old_line = raw.get("new_position", 0) or 0, raw.get("old_position", 0) or 0
        if not isinstance(path, str) or not path or not isinstance(body, str):
            raise ForgeError(422, "comment needs a path and a body")
        if not isinstance(new_line, int) or not isinstance(old_line, int):
            raise ForgeError(422, "positions must be integers")
        if (new_line > 0) == (old_line > 0):
            raise ForgeError(422, "exactly one of new_position and old_position must be set")
        patch = repo.git.file_diff(base, commit, path)
        new_lines, old_lines = diff_line_sets(patch)
        inside = new_line in new_lines if new_line > 0 else old_line in old_lines
        if not inside:
            # Forgejo cannot anchor a code comment outside the PR's hunks.
            raise ForgeError(422, f"line is not part of the diff of {path}")
        return ReviewCommentRecord(
            self.next_id("review_comment"),
            review.id,
            path,
            body,
            new_line,
            old_line,
            commit,
            hunk_around(patch, new_line, old_line),
            user,
            review.submitted_at,
        )

    def add_status(
        self,
        repo: RepoRecord,
        sha: str,
        *,
        state: str,
        context: str,
        description: str,
        target_url: str,
        creator: str,
    ) -> StatusRecord:
        """A commit status on an existing commit."""
        with self.lock:
            if state not in _COMMIT_STATES:
                raise ForgeError(400, f"invalid commit status state {state!r}")
            if repo.git.resolve(sha) is None:
                raise ForgeError(404, "commit does not exist")
            status = StatusRecord(
                self.next_id("status"),
                sha,
                state,
                context,
                description,
                target_url,
                creator,
                self.now(),
            )
            repo.statuses.append(status)
            return status

"""JSON shapes of the fake forge, field for field as Gitea/Forgejo ``modules/structs`` name them.

Only fields the Gitea swagger spec defines may appear here; the contract test enforces that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fakes.forge_state import (
    ForgeState,
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
    "FORGE_VERSION",
    "changed_file_json",
    "comment_json",
    "commit_json",
    "hook_json",
    "iso",
    "pull_json",
    "repo_json",
    "review_comment_json",
    "review_json",
    "status_json",
    "token_json",
    "user_json",
]

FORGE_VERSION = "9.0.0+gitea-1.22.0"
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
# git --name-status letters -> Gitea's ChangedFile.status (services/convert: ToChangedFile).
_FILE_STATUS = {
    "A": "added",
    "D": "deleted",
    "M": "changed",
    "T": "changed",
    "R": "renamed",
    "C": "copied",
}

Json = dict[str, Any]


def iso(value: datetime) -> str:
    """RFC 3339 the way Go's time.Time marshals UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_json(user: UserRecord, base: str) -> Json:
    """``User``."""
    return {
        "id": user.id,
        "login": user.login,
        "login_name": "",
        "source_id": 0,
        "full_name": user.full_name,
        "email": user.email,
        "avatar_url": f"{base}/avatars/{user.id}",
        "language": "en-US",
        "is_admin": user.is_admin,
        "last_login": iso(_EPOCH),
        "created": iso(_EPOCH),
        "restricted": False,
        "active": True,
        "prohibit_login": False,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
    }


def repo_json(state: ForgeState, repo: RepoRecord, base: str, permission: str) -> Json:
    """``Repository`` with ``permissions`` as seen by the caller."""
    html = f"{base}/{repo.full_name}"
    open_prs = sum(1 for p in repo.pulls.values() if p.state == "open")
    return {
        "id": repo.id,
        "owner": user_json(state.users[repo.owner], base),
        "name": repo.name,
        "full_name": repo.full_name,
        "description": "",
        "empty": False,
        "private": repo.private,
        "fork": False,
        "template": False,
        "parent": None,
        "mirror": False,
        "size": 0,
        "language": "",
        "languages_url": f"{base}/api/v1/repos/{repo.full_name}/languages",
        "html_url": html,
        "url": f"{base}/api/v1/repos/{repo.full_name}",
        "link": "",
        "ssh_url": "",
        "clone_url": f"{html}.git",
        "original_url": "",
        "website": "",
        "stars_count": 0,
        "forks_count": 0,
        "watchers_count": 0,
        "open_issues_count": 0,
        "open_pr_counter": open_prs,
        "release_counter": 0,
        "default_branch": repo.default_branch,
        "archived": False,
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.created_at),
        "archived_at": iso(_EPOCH),
        "permissions": {
            "admin": permission in ("admin", "owner"),
            "push": permission in ("write", "admin", "owner"),
            "pull": permission != "none",
        },
        "has_issues": True,
        "internal_tracker": {
            "enable_time_tracker": False,
            "allow_only_contributors_to_track_time": True,
            "enable_issue_dependencies": True,
        },
        "has_wiki": False,
        "has_pull_requests": True,
        "has_projects": False,
        "has_releases": False,
        "has_packages": False,
        "has_actions": False,
        "ignore_whitespace_conflicts": False,
        "allow_merge_commits": True,
        "allow_rebase": True,
        "allow_rebase_explicit": True,
        "allow_squash_merge": True,
        "allow_fast_forward_only_merge": False,
        "allow_rebase_update": True,
        "default_delete_branch_after_merge": False,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": False,
        "avatar_url": "",
        "internal": False,
        "mirror_interval": "",
        "object_format_name": "sha1",
    }


def _branch_json(
    state: ForgeState, repo: RepoRecord, ref: str, sha: str, *, base: str, permission: str
) -> Json:
    return {
        "label": ref,
        "ref": ref,
        "sha": sha,
        "repo_id": repo.id,
        "repo": repo_json(state, repo, base, permission),
    }


def pull_json(
    state: ForgeState, repo: RepoRecord, pull: PullRecord, base: str, permission: str
) -> Json:
    """``PullRequest``."""
    html = f"{base}/{repo.full_name}/pulls/{pull.number}"
    head_sha = state.head_sha(repo, pull)
    base_sha = state.base_sha(repo, pull)
    comments = sum(1 for c in repo.issue_comments if c.number == pull.number)
    closed = pull.state == "closed"
    return {
        "id": pull.id,
        "url": html,
        "number": pull.number,
        "user": user_json(state.users[pull.user], base),
        "title": pull.title,
        "body": pull.body,
        "labels": [],
        "milestone": None,
        "assignee": None,
        "assignees": None,
        "requested_reviewers": None,
        "state": pull.state,
        "is_locked": False,
        "comments": comments,
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "mergeable": not closed,
        "merged": pull.merged,
        "merged_at": iso(pull.updated_at) if pull.merged else None,
        "merge_commit_sha": None,
        "merged_by": None,
        "allow_maintainer_edit": False,
        "base": _branch_json(
            state, repo, pull.base_ref, base_sha, base=base, permission=permission
        ),
        "head": _branch_json(
            state, repo, pull.head_ref, head_sha, base=base, permission=permission
        ),
        "merge_base": repo.git.merge_base(base_sha, head_sha),
        "due_date": None,
        "created_at": iso(pull.created_at),
        "updated_at": iso(pull.updated_at),
        "closed_at": iso(pull.updated_at) if closed else None,
        "pin_order": 0,
    }


def changed_file_json(entry: dict[str, object], repo: RepoRecord, head_sha: str, base: str) -> Json:
    """``ChangedFile`` from one ``GitRepo.changed_files`` entry."""
    name = str(entry["filename"])
    additions, deletions = int(str(entry["additions"])), int(str(entry["deletions"]))
    out: Json = {
        "filename": name,
        "status": _FILE_STATUS.get(str(entry["code"]), "changed"),
        "additions": additions,
        "deletions": deletions,
        "changes": additions + deletions,
        "html_url": f"{base}/{repo.full_name}/src/commit/{head_sha}/{name}",
        "contents_url": f"{base}/api/v1/repos/{repo.full_name}/contents/{name}?ref={head_sha}",
        "raw_url": f"{base}/{repo.full_name}/raw/commit/{head_sha}/{name}",
    }
    if entry["previous_filename"]:
        out["previous_filename"] = entry["previous_filename"]
    return out


def review_json(state: ForgeState, repo: RepoRecord, review: ReviewRecord, base: str) -> Json:
    """``PullReview``."""
    html = f"{base}/{repo.full_name}/pulls/{review.number}"
    return {
        "id": review.id,
        "user": user_json(state.users[review.user], base),
        "team": None,
        "state": review.state,
        "body": review.body,
        "commit_id": review.commit_id,
        "stale": False,
        "official": False,
        "dismissed": False,
        "comments_count": len(review.comments),
        "submitted_at": iso(review.submitted_at),
        "updated_at": iso(review.submitted_at),
        "html_url": f"{html}#issuecomment-{review.id}",
        "pull_request_url": html,
    }


def review_comment_json(
    state: ForgeState, repo: RepoRecord, review: ReviewRecord, c: ReviewCommentRecord, base: str
) -> Json:
    """``PullReviewComment``: new-side line in ``position``, old-side in ``original_position``."""
    html = f"{base}/{repo.full_name}/pulls/{review.number}"
    return {
        "id": c.id,
        "body": c.body,
        "user": user_json(state.users[c.user], base),
        "resolver": None,
        "pull_request_review_id": review.id,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.created_at),
        "path": c.path,
        "commit_id": c.commit_id,
        "original_commit_id": c.commit_id,
        "diff_hunk": c.diff_hunk,
        "position": c.new_line,
        "original_position": c.old_line,
        "html_url": f"{html}/files#issuecomment-{c.id}",
        "pull_request_url": html,
    }


def comment_json(
    state: ForgeState, repo: RepoRecord, comment: IssueCommentRecord, base: str
) -> Json:
    """``Comment`` (a PR conversation comment)."""
    html = f"{base}/{repo.full_name}/pulls/{comment.number}"
    return {
        "id": comment.id,
        "html_url": f"{html}#issuecomment-{comment.id}",
        "pull_request_url": html,
        "issue_url": "",
        "user": user_json(state.users[comment.user], base),
        "original_author": "",
        "original_author_id": 0,
        "body": comment.body,
        "assets": [],
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
    }


def status_json(state: ForgeState, repo: RepoRecord, status: StatusRecord, base: str) -> Json:
    """``CommitStatus``."""
    return {
        "id": status.id,
        "status": status.state,
        "target_url": status.target_url,
        "description": status.description,
        "url": f"{base}/api/v1/repos/{repo.full_name}/statuses/{status.sha}",
        "context": status.context,
        "creator": user_json(state.users[status.creator], base),
        "created_at": iso(status.created_at),
        "updated_at": iso(status.created_at),
    }


def hook_json(hook: HookRecord) -> Json:
    """``Hook``; the secret is never returned, as Forgejo does."""
    config = {k: v for k, v in hook.config.items() if k != "secret"}
    return {
        "id": hook.id,
        "type": hook.type,
        "branch_filter": hook.branch_filter,
        "config": config,
        "events": hook.events,
        "authorization_header": "",
        "active": hook.active,
        "updated_at": iso(hook.created_at),
        "created_at": iso(hook.created_at),
    }


def token_json(token: TokenRecord, *, reveal: bool) -> Json:
    """``AccessToken``; ``sha1`` only in the creation answer."""
    return {
        "id": token.id,
        "name": token.name,
        "sha1": token.sha1 if reveal else "",
        "token_last_eight": token.sha1[-8:],
        "scopes": token.scopes,
    }


def commit_json(repo: RepoRecord, sha: str, base: str) -> Json:
    """``Commit`` as the compare API lists it."""
    fmt = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%T%x00%B"
    fields = repo.git.git("show", "-s", f"--format={fmt}", sha).split("\0")
    parents, tree, message = fields[1].split(), fields[8], fields[9]
    api = f"{base}/api/v1/repos/{repo.full_name}/git"
    files_out = repo.git.git("diff-tree", "--no-commit-id", "--root", "-r", "--name-status", sha)
    files = []
    for line in files_out.splitlines():
        code, _, name = line.partition("\t")
        files.append({"filename": name, "status": _FILE_STATUS.get(code[:1], "changed")})
    return {
        "url": f"{api}/commits/{sha}",
        "sha": sha,
        "created": fields[7],
        "html_url": f"{base}/{repo.full_name}/commit/{sha}",
        "commit": {
            "url": f"{api}/commits/{sha}",
            "author": {"name": fields[2], "email": fields[3], "date": fields[4]},
            "committer": {"name": fields[5], "email": fields[6], "date": fields[7]},
            "message": message,
            "tree": {"url": f"{api}/trees/{tree}", "sha": tree, "created": fields[7]},
        },
        "author": None,
        "committer": None,
        "parents": [{"url": f"{api}/commits/{p}", "sha": p, "created": fields[7]} for p in parents],
        "files": files,
    }

"""``ForgejoHost``: the ``ReviewHost`` for Forgejo and Gitea (REST API ``/api/v1``).

Owner and repository names are checked by ``RepoRef``; SHAs must be full hex object ids; file
paths and refs are checked before they reach a URL. Every failure is a ``HostError`` (raised in
``_http``, the only place that sees httpx errors), and no message carries the token.

Forge quirks handled here (Gitea 1.22 / Forgejo):
- ``PATCH /pulls/{n}`` answers 201; drafts are titles with a ``WIP:``/``[WIP]`` prefix.
- review comments are anchored by file line (``new_position``/``old_position``), not by diff
  position; Forgejo refuses (422) a line outside the PR's hunks.
- ``GET /issues/{n}/comments`` is not paged (``since`` filters instead); ``GET
  /issues/comments/{id}`` answers 204 for the id of a review's code comment.
- collaborator permissions of *other* users are readable only with repository admin rights.
- there is no range diff to ask for: the API's compare lists commits and file names only, and
  the web route ``/{o}/{r}/compare/b...h.diff`` ignores API tokens (anonymous: 404 on a private
  repository). The incremental diff is git's, in the clone (``review/_incremental.py``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from auto_review.errors import HostError, HostNotFound
from auto_review.hosts import _forgejo_json as fj
from auto_review.hosts._forgejo_json import WebhookInfo
from auto_review.hosts._http import (
    DEFAULT_TIMEOUT,
    MAX_LISTING_BYTES,
    MAX_PAGES,
    ForgeHttp,
    RetryPolicy,
    Sleep,
)
from auto_review.hosts._models import (
    ChangedFile,
    Comment,
    CommitState,
    CommitStatus,
    InlineComment,
    Permission,
    PullRequest,
    RepoRef,
    Review,
    ReviewEvent,
)
from auto_review.hosts._protocol import ReviewHost
from auto_review.logs import REDACTED, redact_secrets
from auto_review.settings import ForgeConfig

__all__ = ["MAX_FILE_BYTES", "ForgejoHost", "WebhookInfo", "forgejo_host"]

# Largest single file ``get_file`` returns (repository config, guidelines).
MAX_FILE_BYTES = 4 * 1024 * 1024


class ForgejoHost:
    """``ReviewHost`` over the Forgejo/Gitea REST API with an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        token: SecretStr | str,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_pages: int = MAX_PAGES,
        max_listing_bytes: int = MAX_LISTING_BYTES,
        owns_client: bool = False,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not secret or any(c.isspace() for c in secret):
            raise HostError("the forge token is empty or contains whitespace")
        try:
            parts = urlsplit(base_url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            raise HostError("the forge base URL must be an absolute http(s) URL")
        # A subpath deployment (https://host/forgejo) keeps its prefix.
        self._base = base_url.rstrip("/")
        self._api = f"{self._base}/api/v1"
        self._token = secret
        self._client = client
        self._owns_client = owns_client
        self._max_pages = max_pages
        self._max_listing_bytes = max_listing_bytes
        self._http = ForgeHttp(
            client,
            authorization=f"token {secret}",
            secrets=(secret,),
            retry=retry or RetryPolicy(),
            sleep=sleep,
            jitter=jitter,
            clock=clock,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"ForgejoHost({self._base!r})"  # never the token

    async def aclose(self) -> None:
        """Close the HTTP client if this host created it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> ForgejoHost:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- server ---------------------------------------------------------------------------------
    async def version(self) -> str:
        """The forge's version string (readiness probe)."""
        data = await self._get_json(f"{self._api}/version")
        return fj.str_field(data, "version")

    async def current_user(self) -> str:
        """Login of the token's user (proves the token works)."""
        data = await self._get_json(f"{self._api}/user")
        return fj.str_field(data, "login")

    # -- pull requests --------------------------------------------------------------------------
    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        """One PR."""
        data = await self._get_json(self._repo_url(repo, f"pulls/{fj.check_number(number)}"))
        return fj.pull(repo, data)

    async def list_open_pull_requests(self, repo: RepoRef) -> list[PullRequest]:
        """Every open PR (paged, capped)."""
        items = await self._paginate(self._repo_url(repo, "pulls"), params={"state": "open"})
        return [fj.pull(repo, item) for item in items]

    async def get_pull_diff(self, repo: RepoRef, number: int) -> str:
        """The PR's unified diff (merge base to head), as text."""
        result = await self._http.request(
            "GET",
            self._repo_url(repo, f"pulls/{fj.check_number(number)}.diff"),
            accept="text/plain",
        )
        return result.text()

    async def list_changed_files(self, repo: RepoRef, number: int) -> list[ChangedFile]:
        """Files the PR changes, with status and line counts."""
        items = await self._paginate(self._repo_url(repo, f"pulls/{fj.check_number(number)}/files"))
        return [fj.changed_file(item) for item in items]

    async def update_pull_request(
        self, repo: RepoRef, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        """Change only the given fields of the PR's title and body."""
        payload = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        if payload:
            url = self._repo_url(repo, f"pulls/{fj.check_number(number)}")
            await self._http.request("PATCH", url, body=payload)

    # -- files ----------------------------------------------------------------------------------
    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None:
        """Raw file contents at ``ref``; ``None`` when the file does not exist there."""
        url = self._repo_url(repo, f"raw/{fj.check_file_path(path)}")
        try:
            result = await self._http.request(
                "GET",
                url,
                params={"ref": fj.check_ref(ref)},
                accept="application/octet-stream",
                max_bytes=MAX_FILE_BYTES,
            )
        except HostNotFound:
            return None
        return result.body

    # -- conversation ---------------------------------------------------------------------------
    async def list_issue_comments(
        self, repo: RepoRef, number: int, *, since: str | None = None
    ) -> list[Comment]:
        """PR conversation comments, oldest first; ``since`` (RFC 3339) keeps newer ones only."""
        # Gitea 1.22 answers every comment at once here; newer forges page. Both work.
        params = {"since": since} if since else None
        url = self._repo_url(repo, f"issues/{fj.check_number(number)}/comments")
        items = await self._paginate(url, params=params)
        return [fj.issue_comment(item) for item in items]

    async def get_issue_comment(self, repo: RepoRef, comment_id: int) -> Comment:
        """One conversation comment as it is now; ``HostNotFound`` once it was deleted."""
        url = self._repo_url(repo, f"issues/comments/{fj.check_number(comment_id)}")
        result = await self._http.request("GET", url)
        if result.status == 204:  # Gitea's answer for an id of another comment type
            raise HostNotFound(f"comment {comment_id} is not a conversation comment", status=204)
        return fj.issue_comment(result.json())

    def _public(self, text: str) -> str:
        """Text about to be shown on the forge, without any configured secret.

        What the bot posts is largely model output; a hostile provider, or a proxy that echoes
        request headers, could put a key there. The process's secrets are those logging was
        configured with (every CLI command and the gateway set them from the settings); the
        token is removed in any case.
        """
        return redact_secrets(text).replace(self._token, REDACTED)

    async def create_issue_comment(self, repo: RepoRef, number: int, body: str) -> Comment:
        """Post a PR conversation comment."""
        url = self._repo_url(repo, f"issues/{fj.check_number(number)}/comments")
        data = (await self._http.request("POST", url, body={"body": self._public(body)})).json()
        return fj.issue_comment(data)

    async def edit_issue_comment(self, repo: RepoRef, comment_id: int, body: str) -> Comment:
        """Replace a conversation comment's body."""
        url = self._repo_url(repo, f"issues/comments/{fj.check_number(comment_id)}")
        data = (await self._http.request("PATCH", url, body={"body": self._public(body)})).json()
        return fj.issue_comment(data)

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        """Reviews of the PR, oldest first."""
        items = await self._paginate(
            self._repo_url(repo, f"pulls/{fj.check_number(number)}/reviews")
        )
        return [fj.review(item) for item in items]

    async def list_review_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        """Inline comments of every submitted review on the PR.

        Pending reviews are left out: Forgejo lists other users' drafts to a site admin, and a
        draft is not said yet (its author may still change or discard it), so a command in one
        must not be answered.
        """
        n = fj.check_number(number)
        reviews = await self._paginate(self._repo_url(repo, f"pulls/{n}/reviews"))
        comments: list[Comment] = []
        for review in reviews:
            if not isinstance(review, dict) or not review.get("comments_count"):
                continue
            if str(review.get("state", "")).upper() == "PENDING":
                continue
            review_id = fj.int_field(review, "id")
            url = self._repo_url(repo, f"pulls/{n}/reviews/{review_id}/comments")
            data = (await self._http.request("GET", url)).json()
            comments.extend(fj.review_comment(item, review_id) for item in fj.json_list(data))
        return comments

    async def create_review(
        self,
        repo: RepoRef,
        number: int,
        *,
        commit_id: str,
        body: str,
        event: ReviewEvent,
        comments: Sequence[InlineComment],
    ) -> int:
        """Post one review with inline comments at file lines; returns its id."""
        payload = {
            "body": self._public(body),
            "commit_id": fj.check_sha(commit_id),
            "event": ReviewEvent(event).value,
            "comments": [fj.inline(replace(c, body=self._public(c.body))) for c in comments],
        }
        url = self._repo_url(repo, f"pulls/{fj.check_number(number)}/reviews")
        data = (await self._http.request("POST", url, body=payload)).json()
        return fj.int_field(data, "id")

    # -- statuses and permissions ---------------------------------------------------------------
    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        """Set the commit status ``status.context`` on ``sha``."""
        payload: dict[str, str] = {
            "state": CommitState(status.state).value,
            "context": status.context,
            "description": self._public(status.description),
        }
        if status.target_url:
            payload["target_url"] = status.target_url
        url = self._repo_url(repo, f"statuses/{fj.check_sha(sha)}")
        # Setting the same status twice is harmless, so it is retried like an idempotent call.
        await self._http.request("POST", url, body=payload, idempotent=True)

    async def list_commit_statuses(self, repo: RepoRef, sha: str) -> list[CommitStatus]:
        """Statuses on ``sha``, newest first; states other than the four we use are skipped."""
        items = await self._paginate(self._repo_url(repo, f"commits/{fj.check_sha(sha)}/statuses"))
        out = []
        for item in items:
            state = fj.str_field(item, "status")
            if state in CommitState.__members__.values():
                out.append(
                    CommitStatus(
                        context=fj.str_field(item, "context"),
                        state=CommitState(state),
                        description=fj.opt_str_field(item, "description"),
                        target_url=fj.opt_str_field(item, "target_url") or None,
                    )
                )
        return out

    async def get_permission(self, repo: RepoRef, login: str) -> Permission:
        """``login``'s access to ``repo``; needs repo admin unless ``login`` is the bot itself."""
        url = self._repo_url(repo, f"collaborators/{fj.check_login(login)}/permission")
        data = await self._get_json(url)
        try:
            return Permission(fj.str_field(data, "permission"))
        except ValueError:
            return Permission.NONE

    # -- git ------------------------------------------------------------------------------------
    def clone_url(self, repo: RepoRef) -> str:
        """HTTP(S) clone URL without credentials."""
        return f"{self._base}/{repo.full_name}.git"

    def git_auth_header(self) -> str:
        """``Authorization: token ...`` for one git transfer (``http.extraHeader``)."""
        return f"Authorization: token {self._token}"

    # -- webhooks (operator commands) -----------------------------------------------------------
    async def list_hooks(self, repo: RepoRef) -> list[WebhookInfo]:
        """The repository's webhooks (needs repo admin)."""
        items = await self._paginate(self._repo_url(repo, "hooks"))
        return [fj.hook(item) for item in items]

    async def create_hook(
        self,
        repo: RepoRef,
        *,
        url: str,
        secret: SecretStr | str,
        events: Sequence[str] = ("pull_request", "issue_comment"),
        hook_type: str = "forgejo",
        active: bool = True,
    ) -> WebhookInfo:
        """Register a JSON webhook signed with ``secret`` (needs repo admin)."""
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        payload = {
            "type": hook_type,
            "config": {"url": url, "content_type": "json", "secret": value},
            "events": list(events),
            "active": active,
        }
        hooks = self._repo_url(repo, "hooks")
        data = (await self._http.request("POST", hooks, body=payload)).json()
        return fj.hook(data)

    async def delete_hook(self, repo: RepoRef, hook_id: int) -> None:
        """Remove a webhook (needs repo admin)."""
        await self._http.request(
            "DELETE", self._repo_url(repo, f"hooks/{fj.check_number(hook_id)}")
        )

    # -- helpers --------------------------------------------------------------------------------
    def _repo_url(self, repo: RepoRef, rest: str) -> str:
        return f"{self._api}/repos/{repo.owner}/{repo.name}/{rest}"

    async def _paginate(self, url: str, *, params: dict[str, str] | None = None) -> list[Any]:
        return await self._http.paginate(
            url, params=params, max_pages=self._max_pages, max_bytes=self._max_listing_bytes
        )

    async def _get_json(self, url: str) -> Any:
        return (await self._http.request("GET", url)).json()


def forgejo_host(
    config: ForgeConfig,
    *,
    retry: RetryPolicy | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ForgejoHost:
    """A ``ForgejoHost`` owning its client; close it with ``aclose()`` or ``async with``."""
    # trust_env=False: proxies and certificates come from settings, never implicitly from env.
    client = httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        transport=transport,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    return ForgejoHost(
        client,
        base_url=config.base_url,
        token=config.token,
        retry=retry,
        timeout=timeout,
        owns_client=True,
    )


if TYPE_CHECKING:
    # mypy proves here that the adapter satisfies the protocol every caller codes against.
    _FORGEJO_IS_A_REVIEW_HOST: type[ReviewHost] = ForgejoHost

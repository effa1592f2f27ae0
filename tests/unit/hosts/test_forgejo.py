"""ForgejoHost against the fake forge: a real HTTP server with real git repositories behind it."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.fakes.forge import FakeForge, spec_path
from tests.fakes.forge_state import PullRecord
from tests.fakes.swagger import conforms, load_spec, request_schema

from auto_review.errors import (
    HostAuthError,
    HostError,
    HostNotFound,
    HostRateLimited,
    HostUnavailable,
)
from auto_review.hosts import (
    CommentKind,
    CommitState,
    CommitStatus,
    ForgejoHost,
    InlineComment,
    Permission,
    RepoRef,
    RetryPolicy,
    ReviewEvent,
    ReviewHost,
    create_access_token,
    forgejo_host,
)
from auto_review.hosts._http import MAX_JSON_CONTAINERS
from auto_review.hosts.forgejo import MAX_FILE_BYTES
from auto_review.settings import ForgeConfig

pytestmark = pytest.mark.anyio

DEMO = RepoRef("alice", "demo")
PULLS = "/repos/{owner}/{repo}/pulls/{index}"


class SleepLog:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> SleepLog:
    return SleepLog()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c


def _host(
    forge: FakeForge,
    client: httpx.AsyncClient,
    sleeps: SleepLog,
    *,
    token: str | None = None,
    **kw: object,
) -> ForgejoHost:
    return ForgejoHost(
        client,
        base_url=forge.url,
        token=token or forge.bot_token,
        sleep=sleeps,
        jitter=lambda: 0.0,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def host(
    fake_forge: FakeForge, forge_repo: PullRecord, client: httpx.AsyncClient, sleeps: SleepLog
) -> ForgejoHost:
    return _host(fake_forge, client, sleeps)


@pytest.fixture
def offline_host(fake_forge: FakeForge, forge_repo: PullRecord) -> ForgejoHost:
    """A host for sync tests that make no HTTP request (its client never opens a connection)."""
    return ForgejoHost(
        httpx.AsyncClient(trust_env=False), base_url=fake_forge.url, token=fake_forge.bot_token
    )


def _sha(forge: FakeForge, ref: str) -> str:
    sha = forge.repo("alice/demo").git.resolve(ref)
    assert sha is not None
    return sha


# -- protocol and server ---------------------------------------------------------------------
def test_forgejo_host_satisfies_the_review_host_protocol(offline_host: ForgejoHost) -> None:
    as_protocol: ReviewHost = offline_host
    assert as_protocol is offline_host


async def test_forgejo_host_reads_version_and_current_user(host: ForgejoHost) -> None:
    assert (await host.version()).startswith("9.0.0")
    assert await host.current_user() == "auto-review"


async def test_forgejo_host_sends_the_token_header_and_a_user_agent(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    seen: list[httpx.Request] = []

    async def spy(request: httpx.Request) -> None:
        seen.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [spy]}, trust_env=False) as c:
        await _host(fake_forge, c, SleepLog()).current_user()
    assert seen[0].headers["authorization"] == f"token {fake_forge.bot_token}"
    assert seen[0].headers["user-agent"].startswith("auto-review/")


# -- pull requests ---------------------------------------------------------------------------
async def test_forgejo_host_maps_a_pull_request(host: ForgejoHost, fake_forge: FakeForge) -> None:
    pr = await host.get_pull_request(DEMO, 1)
    assert (pr.number, pr.title, pr.body, pr.author_login) == (
        1,
        "Fix things",
        "Please review",
        "alice",
    )
    assert pr.head_sha == _sha(fake_forge, "refs/heads/feature")
    assert pr.base_sha == _sha(fake_forge, "refs/heads/main")
    assert pr.merge_base == _sha(fake_forge, "refs/heads/main")  # feature forked from its tip
    assert (pr.head_ref, pr.base_ref, pr.state) == ("feature", "main", "open")
    assert pr.is_open
    assert not pr.draft
    assert not pr.merged
    assert pr.html_url.endswith("/alice/demo/pulls/1")


async def test_forgejo_host_marks_wip_titles_as_draft(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    fake_forge.open_pull("alice/demo", head="feature", title="WIP: not yet", author="alice")
    assert (await host.get_pull_request(DEMO, 2)).draft


async def test_forgejo_host_lists_every_open_pull_across_pages(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    for i in range(54):
        fake_forge.open_pull("alice/demo", head="feature", title=f"pr {i}", author="alice")
    fake_forge.close_pull("alice/demo", 1)
    pulls = await host.list_open_pull_requests(DEMO)
    assert len(pulls) == 54
    assert 1 not in {p.number for p in pulls}
    pages = fake_forge.calls_to("/repos/{owner}/{repo}/pulls")
    assert [(c.query["page"], c.query["limit"], c.query["state"]) for c in pages] == [
        ("1", "50", "open"),
        ("2", "50", "open"),
    ]


async def test_forgejo_host_follows_link_headers_when_the_forge_clamps_page_size(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    fake_forge.state.max_page_size = 10  # an instance with MAX_RESPONSE_ITEMS = 10
    for i in range(24):
        fake_forge.open_pull("alice/demo", head="feature", title=f"pr {i}", author="alice")
    assert len(await host.list_open_pull_requests(DEMO)) == 25
    assert len(fake_forge.calls_to("/repos/{owner}/{repo}/pulls")) == 3


async def test_forgejo_host_stops_at_the_page_cap(
    fake_forge: FakeForge, forge_repo: PullRecord, client: httpx.AsyncClient
) -> None:
    capped = _host(fake_forge, client, SleepLog(), max_pages=2)
    fake_forge.state.max_page_size = 10
    for i in range(40):
        fake_forge.open_pull("alice/demo", head="feature", title=f"pr {i}", author="alice")
    assert len(await capped.list_open_pull_requests(DEMO)) == 20
    assert len(fake_forge.calls_to("/repos/{owner}/{repo}/pulls")) == 2


async def test_forgejo_host_reads_the_pull_diff_and_changed_files(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    fake_forge.push("alice/demo", "feature", {"README.md": None, "docs/guide.md": "# guide\n"})
    diff = await host.get_pull_diff(DEMO, 1)
    assert "+    return a + b" in diff
    assert "+VALUE = 1" in diff
    files = {f.path: f for f in await host.list_changed_files(DEMO, 1)}
    assert files["src/app.py"].status == "modified"
    assert (files["src/app.py"].additions, files["src/app.py"].deletions) == (1, 1)
    assert files["src/new.py"].status == "added"
    assert files["README.md"].status == "removed"


async def test_forgejo_host_reports_renames_with_the_previous_path(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    body = "".join(f"line {i}\n" for i in range(30))
    fake_forge.push("alice/demo", "main", {"old_name.txt": body})
    fake_forge.push("alice/demo", "mv", {"old_name.txt": None, "new_name.txt": body})
    fake_forge.open_pull("alice/demo", head="mv", author="alice")
    (renamed,) = await host.list_changed_files(DEMO, 2)
    assert (renamed.path, renamed.status, renamed.previous_path) == (
        "new_name.txt",
        "renamed",
        "old_name.txt",
    )


async def test_forgejo_host_refuses_a_non_sha_before_any_request(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    before = len(fake_forge.calls)
    with pytest.raises(HostError):
        await host.set_commit_status(DEMO, "../../x", CommitStatus("c", CommitState.PENDING, "d"))
    with pytest.raises(HostError):
        await host.list_commit_statuses(DEMO, "HEAD")
    assert len(fake_forge.calls) == before


async def test_forgejo_host_updates_only_the_given_pull_fields(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    await host.update_pull_request(DEMO, 1, title="Fix things [reviewed]")
    pull = fake_forge.state.pull(fake_forge.repo("alice/demo"), 1)
    assert (pull.title, pull.body) == ("Fix things [reviewed]", "Please review")
    edits = fake_forge.calls_to(PULLS, "PATCH")
    assert edits[0].status == 201  # Gitea answers PATCH with 201


# -- files -----------------------------------------------------------------------------------
async def test_forgejo_host_reads_a_file_at_a_ref_and_none_when_absent(
    host: ForgejoHost,
) -> None:
    assert await host.get_file(DEMO, "src/new.py", "feature") == b"VALUE = 1\n"
    assert await host.get_file(DEMO, "src/new.py", "main") is None
    assert await host.get_file(DEMO, ".auto_review.yaml", "main") is None


async def test_forgejo_host_reads_files_with_unusual_names(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    sha = fake_forge.push("alice/demo", "main", {"docs/a b#c?.md": "odd\n"})
    assert await host.get_file(DEMO, "docs/a b#c?.md", sha) == b"odd\n"


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "a//b", "a/./b", "a\nb", ""])
async def test_forgejo_host_refuses_unsafe_file_paths(host: ForgejoHost, path: str) -> None:
    with pytest.raises(HostError):
        await host.get_file(DEMO, path, "main")


async def test_forgejo_host_refuses_a_file_larger_than_the_cap(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    fake_forge.push("alice/demo", "main", {"big.bin": b"x" * (MAX_FILE_BYTES + 1)})
    with pytest.raises(HostError, match="larger than"):
        await host.get_file(DEMO, "big.bin", "main")


# -- conversation ----------------------------------------------------------------------------
async def test_forgejo_host_creates_lists_and_edits_issue_comments(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    fake_forge.comment("alice/demo", 1, "@auto-review review", author="bob")
    mine = await host.create_issue_comment(DEMO, 1, "On it.")
    assert (mine.kind, mine.author_login, mine.body) == (CommentKind.ISSUE, "auto-review", "On it.")
    edited = await host.edit_issue_comment(DEMO, mine.id, "Done.")
    assert edited.body == "Done."
    listed = await host.list_issue_comments(DEMO, 1)
    assert [(c.author_login, c.body) for c in listed] == [
        ("bob", "@auto-review review"),
        ("auto-review", "Done."),
    ]


async def test_forgejo_host_reads_one_issue_comment_until_it_is_deleted(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    written = fake_forge.comment("alice/demo", 1, "@auto-review help", author="bob")
    comment = await host.get_issue_comment(DEMO, written.id)
    assert (comment.id, comment.kind, comment.author_login, comment.body) == (
        written.id,
        CommentKind.ISSUE,
        "bob",
        "@auto-review help",
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        deleted = await client.delete(
            f"{fake_forge.api_url}/repos/alice/demo/issues/comments/{written.id}",
            headers={"Authorization": f"token {fake_forge.token_for('bob')}"},
        )
    assert deleted.status_code == 204
    with pytest.raises(HostNotFound):
        await host.get_issue_comment(DEMO, written.id)


async def test_forgejo_host_takes_giteas_204_for_a_code_comment_id_as_not_found(
    sleeps: SleepLog,
) -> None:
    # Gitea answers GET /issues/comments/{id} with 204 and no body for a review's code comment.
    def empty(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/repos/alice/demo/issues/comments/5"
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(empty)) as c:
        host = ForgejoHost(c, base_url="https://forge.example", token="t" * 40, sleep=sleeps)
        with pytest.raises(HostNotFound):
            await host.get_issue_comment(DEMO, 5)


async def test_forgejo_host_lists_only_comments_since_a_time(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    old = fake_forge.comment("alice/demo", 1, "old", author="bob")
    fake_forge.state.advance_clock(60)
    fake_forge.comment("alice/demo", 1, "new", author="bob")
    since = (old.created_at.replace(microsecond=0)).isoformat().replace("+00:00", "Z")
    later = since.replace(since[-3:-1], f"{int(since[-3:-1]) + 30:02d}")
    assert [c.body for c in await host.list_issue_comments(DEMO, 1, since=since)] == ["old", "new"]
    assert [c.body for c in await host.list_issue_comments(DEMO, 1, since=later)] == ["new"]


async def test_forgejo_host_posts_a_review_with_inline_comments_at_file_lines(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    head = _sha(fake_forge, "refs/heads/feature")
    review_id = await host.create_review(
        DEMO,
        1,
        commit_id=head,
        body="Two findings",
        event=ReviewEvent.REQUEST_CHANGES,
        comments=[
            InlineComment("src/app.py", "sub adds", new_line=6),
            InlineComment("src/app.py", "was right", old_line=6),
            InlineComment("src/new.py", "name it", new_line=1),
        ],
    )
    (stored,) = fake_forge.repo("alice/demo").reviews
    assert (stored.id, stored.state, stored.commit_id) == (review_id, "REQUEST_CHANGES", head)
    assert [(c.path, c.new_line, c.old_line) for c in stored.comments] == [
        ("src/app.py", 6, 0),
        ("src/app.py", 0, 6),
        ("src/new.py", 1, 0),
    ]
    (review,) = await host.list_reviews(DEMO, 1)
    assert (review.id, review.author_login, review.state) == (
        review_id,
        "auto-review",
        "REQUEST_CHANGES",
    )
    inline = await host.list_review_comments(DEMO, 1)
    assert [(c.kind, c.path, c.line, c.review_id) for c in inline] == [
        (CommentKind.REVIEW, "src/app.py", 6, review_id),
        (CommentKind.REVIEW, "src/app.py", None, review_id),
        (CommentKind.REVIEW, "src/new.py", 1, review_id),
    ]


async def test_forgejo_host_review_comments_leave_out_unsubmitted_drafts(
    host: ForgejoHost, fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    # Forgejo lists other users' pending reviews to a site admin. A draft is not said yet: its
    # author may still change or discard it, so the bot must neither answer nor act on it.
    repo = fake_forge.repo("alice/demo")
    comment = {"path": "src/app.py", "body": "@auto-review review", "new_position": 6}
    for event in ("PENDING", "COMMENT"):
        fake_forge.state.create_review(
            repo, forge_repo, user="alice", event=event, body="", commit_id="", comments=[comment]
        )
    inline = await host.list_review_comments(DEMO, 1)
    submitted = [r.id for r in repo.reviews if r.state == "COMMENT"]
    assert [c.review_id for c in inline] == submitted  # the submitted one: a positive control


async def test_forgejo_host_review_on_a_line_outside_the_diff_fails_without_retry(
    host: ForgejoHost, fake_forge: FakeForge, sleeps: SleepLog
) -> None:
    with pytest.raises(HostError) as caught:
        await host.create_review(
            DEMO,
            1,
            commit_id=_sha(fake_forge, "refs/heads/feature"),
            body="",
            event=ReviewEvent.COMMENT,
            comments=[InlineComment("src/app.py", "far away", new_line=1)],
        )
    assert caught.value.status == 422
    assert "not part of the diff" in str(caught.value)
    assert sleeps.delays == []
    assert fake_forge.repo("alice/demo").reviews == []


async def test_forgejo_host_refuses_an_inline_comment_with_both_sides(host: ForgejoHost) -> None:
    with pytest.raises(HostError):
        await host.create_review(
            DEMO,
            1,
            commit_id="a" * 40,
            body="x",
            event=ReviewEvent.COMMENT,
            comments=[InlineComment("src/app.py", "both", new_line=6, old_line=6)],
        )


# -- statuses and permissions ----------------------------------------------------------------
async def test_forgejo_host_sets_and_lists_commit_statuses(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    head = _sha(fake_forge, "refs/heads/feature")
    await host.set_commit_status(
        DEMO, head, CommitStatus("auto-review", CommitState.PENDING, "Reviewing")
    )
    await host.set_commit_status(
        DEMO,
        head,
        CommitStatus("auto-review", CommitState.FAILURE, "2 errors", target_url="https://x/1"),
    )
    statuses = await host.list_commit_statuses(DEMO, head)
    assert [(s.state, s.description, s.target_url) for s in statuses] == [
        (CommitState.FAILURE, "2 errors", "https://x/1"),
        (CommitState.PENDING, "Reviewing", None),
    ]


async def test_forgejo_host_reads_permissions_with_admin_rights_and_refuses_without(
    host: ForgejoHost, fake_forge: FakeForge, client: httpx.AsyncClient
) -> None:
    fake_forge.add_user("bob")
    fake_forge.add_user("carol")
    fake_forge.repo("alice/demo").collaborators["bob"] = "write"
    assert await host.get_permission(DEMO, "auto-review") == Permission.WRITE
    with pytest.raises(HostAuthError):  # Gitea: only repo admins may ask about others
        await host.get_permission(DEMO, "bob")
    fake_forge.repo("alice/demo").collaborators["auto-review"] = "admin"
    assert await host.get_permission(DEMO, "bob") == Permission.WRITE
    assert await host.get_permission(DEMO, "carol") == Permission.READ
    with pytest.raises(HostNotFound):
        await host.get_permission(DEMO, "nobody")
    with pytest.raises(HostError):
        await host.get_permission(DEMO, "../admin")


# -- git -------------------------------------------------------------------------------------
def test_forgejo_host_clone_url_and_auth_header_clone_the_repository(
    offline_host: ForgejoHost, fake_forge: FakeForge, tmp_path: Path
) -> None:
    host = offline_host
    url = host.clone_url(DEMO)
    assert url == f"{fake_forge.url}/alice/demo.git"
    assert fake_forge.bot_token not in url
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": host.git_auth_header(),
    }
    proc = subprocess.run(
        ["git", "clone", "--quiet", url, str(tmp_path / "c")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c" / "README.md").exists()
    assert fake_forge.bot_token not in (tmp_path / "c" / ".git" / "config").read_text()


# -- hooks and tokens ------------------------------------------------------------------------
async def test_forgejo_host_creates_lists_and_deletes_hooks_with_admin_rights(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    with pytest.raises(HostAuthError):
        await host.list_hooks(DEMO)
    fake_forge.repo("alice/demo").collaborators["auto-review"] = "admin"
    hook = await host.create_hook(
        DEMO, url="http://127.0.0.1:9/webhooks/forgejo", secret=SecretStr("k" * 32)
    )
    assert (hook.type, hook.active, hook.events) == (
        "forgejo",
        True,
        ("pull_request", "issue_comment"),
    )
    stored = fake_forge.repo("alice/demo").hooks[0]
    assert stored.config["secret"] == "k" * 32
    listed = await host.list_hooks(DEMO)
    assert [(h.id, h.url) for h in listed] == [(hook.id, "http://127.0.0.1:9/webhooks/forgejo")]
    await host.delete_hook(DEMO, hook.id)
    assert await host.list_hooks(DEMO) == []
    with pytest.raises(HostNotFound):
        await host.delete_hook(DEMO, hook.id)


async def test_create_access_token_mints_a_working_token_with_basic_auth(
    fake_forge: FakeForge, client: httpx.AsyncClient
) -> None:
    fake_forge.add_user("botty", password="correct horse battery")
    token = await create_access_token(
        fake_forge.url, "botty", SecretStr("correct horse battery"), "auto-review", client=client
    )
    assert token.name == "auto-review"
    assert token.scopes == ("write:repository", "write:issue", "read:user")
    assert "sha1" not in repr(token)
    assert token.token.get_secret_value() not in repr(token)
    minted = _host(fake_forge, client, SleepLog(), token=token.token.get_secret_value())
    assert await minted.current_user() == "botty"


async def test_create_access_token_with_a_wrong_password_never_echoes_it(
    fake_forge: FakeForge, client: httpx.AsyncClient
) -> None:
    fake_forge.add_user("botty", password="correct horse battery")
    with pytest.raises(HostAuthError) as caught:
        await create_access_token(
            fake_forge.url, "botty", "wrong-password-123", "auto-review", client=client
        )
    assert "wrong-password-123" not in str(caught.value) + repr(caught.value)


# -- failures --------------------------------------------------------------------------------
async def test_forgejo_host_retries_429_honouring_retry_after(
    host: ForgejoHost, fake_forge: FakeForge, sleeps: SleepLog
) -> None:
    fake_forge.fail(PULLS, status=429, times=2, retry_after="3")
    assert (await host.get_pull_request(DEMO, 1)).number == 1
    assert sleeps.delays == [3.0, 3.0]
    assert [c.status for c in fake_forge.calls_to(PULLS)] == [429, 429, 200]


async def test_forgejo_host_retries_5xx_with_capped_exponential_backoff(
    fake_forge: FakeForge, forge_repo: PullRecord, client: httpx.AsyncClient, sleeps: SleepLog
) -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=1.0, max_delay_s=4.0)
    host = _host(fake_forge, client, sleeps, retry=policy)
    fake_forge.fail(PULLS, status=500, times=2)
    fake_forge.fail(PULLS, status=502, times=1)
    fake_forge.fail(PULLS, status=503, times=2)
    assert (await host.get_pull_request(DEMO, 1)).number == 1
    # equal jitter with jitter() == 0: half of min(cap, base * 2**n)
    assert sleeps.delays == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_retry_policy_backoff_stays_within_its_jitter_bounds() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=10.0)
    for attempt in range(1, 8):
        ceiling = min(10.0, 2.0 ** (attempt - 1))
        assert policy.backoff(attempt, 0.0) == ceiling / 2
        assert policy.backoff(attempt, 1.0) == ceiling


async def test_forgejo_host_honours_retry_after_on_a_503(
    host: ForgejoHost, fake_forge: FakeForge, sleeps: SleepLog
) -> None:
    fake_forge.fail(PULLS, status=503, times=1, retry_after="7")
    assert (await host.get_pull_request(DEMO, 1)).number == 1
    assert sleeps.delays == [7.0]


async def test_forgejo_host_reads_retry_after_given_as_an_http_date(
    fake_forge: FakeForge, forge_repo: PullRecord, client: httpx.AsyncClient, sleeps: SleepLog
) -> None:
    when = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)
    host = _host(fake_forge, client, sleeps, clock=lambda: when.timestamp() - 4.0)
    fake_forge.fail(PULLS, status=429, times=1, retry_after=format_datetime(when, usegmt=True))
    assert (await host.get_pull_request(DEMO, 1)).number == 1
    assert sleeps.delays == [4.0]


async def test_forgejo_host_gives_up_on_5xx_after_max_attempts(
    host: ForgejoHost, fake_forge: FakeForge, sleeps: SleepLog
) -> None:
    fake_forge.fail(PULLS, status=500, times=10)
    with pytest.raises(HostUnavailable, match="gave up after 4 attempts") as caught:
        await host.get_pull_request(DEMO, 1)
    assert caught.value.status == 500
    assert len(fake_forge.calls_to(PULLS)) == 4
    assert len(sleeps.delays) == 3


async def test_forgejo_host_gives_up_on_429_after_max_attempts_with_retry_after(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    fake_forge.fail(PULLS, status=429, times=10, retry_after="2")
    with pytest.raises(HostRateLimited) as caught:
        await host.get_pull_request(DEMO, 1)
    assert caught.value.retry_after == 2.0
    assert len(fake_forge.calls_to(PULLS)) == 4


async def test_forgejo_host_hands_a_long_retry_after_to_the_caller_instead_of_sleeping(
    host: ForgejoHost, fake_forge: FakeForge, sleeps: SleepLog
) -> None:
    fake_forge.fail(PULLS, status=429, times=1, retry_after="3600")
    with pytest.raises(HostRateLimited) as caught:
        await host.get_pull_request(DEMO, 1)
    assert caught.value.retry_after == 3600.0
    assert sleeps.delays == []


async def test_forgejo_host_does_not_repeat_a_post_after_a_500(
    host: ForgejoHost, fake_forge: FakeForge, sleeps: SleepLog
) -> None:
    path = "/repos/{owner}/{repo}/issues/{index}/comments"
    fake_forge.fail(path, status=500, method="POST")
    with pytest.raises(HostUnavailable):
        await host.create_issue_comment(DEMO, 1, "hello")
    assert len(fake_forge.calls_to(path, "POST")) == 1
    assert sleeps.delays == []


async def test_forgejo_host_repeats_a_post_after_a_429(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    path = "/repos/{owner}/{repo}/issues/{index}/comments"
    fake_forge.fail(path, status=429, method="POST", retry_after="1")
    assert (await host.create_issue_comment(DEMO, 1, "hello")).body == "hello"
    assert [c.status for c in fake_forge.calls_to(path, "POST")] == [429, 201]


async def test_forgejo_host_retries_commit_statuses_after_a_500(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    path = "/repos/{owner}/{repo}/statuses/{sha}"
    fake_forge.fail(path, status=500, method="POST")
    head = _sha(fake_forge, "refs/heads/feature")
    await host.set_commit_status(DEMO, head, CommitStatus("auto-review", CommitState.SUCCESS, "ok"))
    assert [c.status for c in fake_forge.calls_to(path, "POST")] == [500, 201]


async def test_forgejo_host_times_out_a_hanging_forge_and_reports_it_unavailable(
    fake_forge: FakeForge, forge_repo: PullRecord, client: httpx.AsyncClient, sleeps: SleepLog
) -> None:
    host = _host(
        fake_forge,
        client,
        sleeps,
        retry=RetryPolicy(max_attempts=2),
        timeout=httpx.Timeout(0.3),
    )
    fake_forge.hang(PULLS, times=2)
    with pytest.raises(HostUnavailable, match="timed out"):
        await host.get_pull_request(DEMO, 1)
    assert len(sleeps.delays) == 1


async def test_forgejo_host_reports_a_refused_connection_as_unavailable(
    client: httpx.AsyncClient, sleeps: SleepLog
) -> None:
    host = ForgejoHost(client, base_url="http://127.0.0.1:9", token="t" * 40, sleep=sleeps)
    with pytest.raises(HostUnavailable, match="cannot connect"):
        await host.version()
    assert len(sleeps.delays) == 3


async def test_forgejo_host_maps_401_to_auth_error_without_the_token(
    fake_forge: FakeForge, forge_repo: PullRecord, client: httpx.AsyncClient
) -> None:
    wrong = "f" * 40
    host = _host(fake_forge, client, SleepLog(), token=wrong)
    with pytest.raises(HostAuthError) as caught:
        await host.current_user()
    assert caught.value.status == 401
    assert wrong not in str(caught.value) + repr(caught.value) + str(caught.value.__cause__)


async def test_forgejo_host_maps_404_to_not_found(host: ForgejoHost) -> None:
    with pytest.raises(HostNotFound):
        await host.get_pull_request(DEMO, 99)
    with pytest.raises(HostNotFound):
        await host.get_pull_request(RepoRef("alice", "absent"), 1)


async def test_forgejo_host_scrubs_the_token_from_an_echoed_error_body(
    sleeps: SleepLog,
) -> None:
    token = "0123456789abcdef0123456789abcdef01234567"

    def echo(request: httpx.Request) -> httpx.Response:
        # A misbehaving proxy that quotes the request headers back in its error page.
        return httpx.Response(400, text=f"bad request; got {request.headers['authorization']}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as c:
        host = ForgejoHost(c, base_url="https://forge.example", token=token, sleep=sleeps)
        with pytest.raises(HostError) as caught:
            await host.version()
    text = str(caught.value) + repr(caught.value)
    assert token not in text
    assert "[REDACTED]" in text  # positive control: the body was quoted, minus the token


async def test_forgejo_host_truncates_long_error_bodies(sleeps: SleepLog) -> None:
    def noisy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="x" * 100_000)

    async with httpx.AsyncClient(transport=httpx.MockTransport(noisy)) as c:
        host = ForgejoHost(c, base_url="https://forge.example", token="t" * 40, sleep=sleeps)
        with pytest.raises(HostError) as caught:
            await host.version()
    assert len(str(caught.value)) < 500


async def test_forgejo_host_factory_builds_a_working_host_from_forge_config(
    fake_forge: FakeForge,
) -> None:
    config = ForgeConfig(fake_forge.url, SecretStr(fake_forge.bot_token), "auto-review")
    async with forgejo_host(config) as host:
        assert await host.current_user() == "auto-review"
        assert fake_forge.bot_token not in repr(host)


async def test_forgejo_host_sends_only_request_bodies_the_spec_defines(
    host: ForgejoHost, fake_forge: FakeForge, client: httpx.AsyncClient
) -> None:
    fake_forge.repo("alice/demo").collaborators["auto-review"] = "admin"
    head = _sha(fake_forge, "refs/heads/feature")
    await host.create_review(
        DEMO,
        1,
        commit_id=head,
        body="b",
        event=ReviewEvent.COMMENT,
        comments=[InlineComment("src/app.py", "c", new_line=6)],
    )
    comment = await host.create_issue_comment(DEMO, 1, "hi")
    await host.edit_issue_comment(DEMO, comment.id, "hello")
    await host.update_pull_request(DEMO, 1, title="t", body="b")
    await host.set_commit_status(
        DEMO, head, CommitStatus("auto-review", CommitState.SUCCESS, "ok", target_url="https://x")
    )
    hook = await host.create_hook(DEMO, url="http://127.0.0.1:9/h", secret="s" * 32)
    await host.delete_hook(DEMO, hook.id)
    fake_forge.add_user("botty", password="pw-123456")
    await create_access_token(fake_forge.url, "botty", "pw-123456", "t", client=client)
    spec = load_spec()
    by_route = {f"{r.method} {spec_path(r)}": r for r in fake_forge.routes}
    sent = [c for c in fake_forge.calls if c.request_json is not None]
    assert {c.route.split(" ", 1)[0] for c in sent} == {"POST", "PATCH"}
    assert len(sent) == 7
    problems = []
    for call in sent:
        schema = request_schema(spec, by_route[call.route])
        assert schema is not None, call.route
        problems += conforms(spec, schema, call.request_json, call.route)
    assert problems == []


@pytest.mark.parametrize("base_url", ["ftp://forge", "forge.example", "http://[::1", ""])
async def test_forgejo_host_refuses_a_bad_base_url_with_a_host_error(
    client: httpx.AsyncClient, base_url: str
) -> None:
    with pytest.raises(HostError):
        ForgejoHost(client, base_url=base_url, token="t" * 40)


async def test_forgejo_host_refuses_an_empty_or_spaced_token(client: httpx.AsyncClient) -> None:
    for token in ("", "a b", "tok\n"):
        with pytest.raises(HostError):
            ForgejoHost(client, base_url="https://forge.example", token=token)
    ForgejoHost(client, base_url="https://forge.example", token="t" * 40)  # positive control


async def test_forgejo_host_pages_through_many_issue_comments(
    host: ForgejoHost, fake_forge: FakeForge
) -> None:
    fake_forge.add_user("bob")
    for i in range(61):
        fake_forge.state.add_issue_comment(fake_forge.repo("alice/demo"), 1, "bob", f"c{i}")
    comments = await host.list_issue_comments(DEMO, 1)
    assert [c.body for c in comments] == [f"c{i}" for i in range(61)]
    assert len(fake_forge.calls_to("/repos/{owner}/{repo}/issues/{index}/comments")) == 2


async def test_forgejo_host_stops_when_a_forge_ignores_the_page_parameter(
    sleeps: SleepLog,
) -> None:
    # Gitea 1.22 answers every issue comment on every "page"; the listing must not repeat.
    everything = [
        {"id": i, "body": f"c{i}", "user": {"login": "bob"}, "created_at": ""} for i in range(70)
    ]
    seen_pages: list[str] = []

    def unpaged(request: httpx.Request) -> httpx.Response:
        seen_pages.append(request.url.params["page"])
        return httpx.Response(200, json=everything)

    async with httpx.AsyncClient(transport=httpx.MockTransport(unpaged)) as c:
        host = ForgejoHost(c, base_url="https://forge.example", token="t" * 40, sleep=sleeps)
        comments = await host.list_issue_comments(DEMO, 1)
    assert [c.id for c in comments] == list(range(70))
    assert seen_pages == ["1", "2"]


async def test_forgejo_host_leaves_no_token_prefix_where_an_error_body_is_cut(
    sleeps: SleepLog,
) -> None:
    token = "0123456789abcdef0123456789abcdef01234567"

    def straddle(request: httpx.Request) -> httpx.Response:
        # The token sits across every plausible cut point of the quoted body.
        return httpx.Response(502, text="".join("y" * n + token for n in (290, 900, 1190)))

    async with httpx.AsyncClient(transport=httpx.MockTransport(straddle)) as c:
        host = ForgejoHost(
            c, base_url="https://forge.example", token=token, sleep=sleeps,
            retry=RetryPolicy(max_attempts=1),
        )  # fmt: skip
        with pytest.raises(HostUnavailable) as caught:
            await host.version()
    assert token[:8] not in str(caught.value)


async def test_forgejo_host_never_posts_a_configured_secret(
    sleeps: SleepLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: a hostile model provider (or a proxy that echoes headers into completions)
    answers with the model API key, the webhook secret or the forge token, and the bot posts
    the answer as a comment, a review, an inline comment or a status on a public PR.

    Control: every text the host writes to the forge is scrubbed of every configured secret
    (the log redactor's set, which the CLI fills from the settings) and of its own token.
    """
    import json

    from auto_review import logs

    token = "0123456789abcdef0123456789abcdef01234567"
    key, hook = "sk-model-key-0123456789abcdef", "webhook-secret-0123456789abcdef0123"
    monkeypatch.setattr(logs, "_redactor", logs.SecretRedactor([key, hook]))
    sent: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request.content.decode())
        return httpx.Response(201, json={"id": 5, "body": "", "user": {"login": "bot"},
                                         "created_at": "2026-01-01T00:00:00Z"})  # fmt: skip

    leak = f"env: LLM_API_KEY={key} WEBHOOK_SECRET={hook} AR_FORGEJO_TOKEN={token}"
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as c:
        host = ForgejoHost(c, base_url="https://forge.example", token=token, sleep=sleeps)
        await host.create_issue_comment(DEMO, 1, leak)
        await host.edit_issue_comment(DEMO, 3, leak)
        await host.create_review(
            DEMO, 1, commit_id="a" * 40, body=leak, event=ReviewEvent.COMMENT,
            comments=[InlineComment("a.py", leak, new_line=1)],
        )  # fmt: skip
        await host.set_commit_status(
            DEMO, "a" * 40, CommitStatus("auto-review", CommitState.ERROR, leak[:140])
        )
    assert len(sent) == 4
    for body in sent:
        text = json.dumps(json.loads(body))
        assert "[REDACTED]" in text
        for secret in (key, hook, token):
            assert secret not in text, text


# -- a hostile forge (or a proxy in front of it): bounded parsing and listings ------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5_000 + b"]" * 5_000,  # 10 KB nested deeper than the JSON parser goes
        b"[" + b",".join([b"{}"] * (MAX_JSON_CONTAINERS + 1)) + b"]",  # ~25x its size parsed
    ],
    ids=["deep", "containers"],
)
async def test_forgejo_host_refuses_json_that_would_crash_or_bloat_the_parser(
    sleeps: SleepLog, body: bytes
) -> None:
    def hostile(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(hostile)) as c:
        host = ForgejoHost(c, base_url="https://forge.example", token="t" * 40, sleep=sleeps)
        with pytest.raises(HostError, match="JSON"):
            await host.list_issue_comments(DEMO, 1)


async def test_forgejo_host_stops_a_listing_at_its_byte_budget(sleeps: SleepLog) -> None:
    # Endless distinct pages, each under the per-answer cap: without a budget for the whole
    # listing, MAX_PAGES of them are held in memory at once (100 x 32 MiB).
    served: list[int] = []

    def endless(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        served.append(page)
        rows = [
            {"id": page * 100 + i, "body": "x" * 16_384, "user": {"login": "bob"}} for i in range(4)
        ]
        return httpx.Response(
            200, json=rows, headers={"Link": '<https://forge.example/>; rel="next"'}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(endless)) as c:
        host = ForgejoHost(
            c,
            base_url="https://forge.example",
            token="t" * 40,
            sleep=sleeps,
            max_listing_bytes=256 * 1024,
        )
        comments = await host.list_issue_comments(DEMO, 1)
    # 4 x 16 KiB a page: the fourth page reaches 256 KiB, the fifth is over it and not kept.
    assert len(served) <= 5
    assert len(comments) <= 4 * 4
    assert comments


async def test_forgejo_host_ends_an_answer_dripped_past_its_deadline(sleeps: SleepLog) -> None:
    """Attack: a forge (or a proxy in front of it) drips its answer a chunk at a time, each
    chunk inside the read timeout, holding a review worker for as long as it likes. Control:
    one deadline per attempt (5 read timeouts); the stream's own count shows it was cut."""
    sent: list[int] = []

    async def drip() -> AsyncIterator[bytes]:
        yield b"["
        for i in range(2_000):
            sent.append(i)
            await asyncio.sleep(0.005)
            yield b" "
        yield b"]"

    def slow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=drip(), headers={"Content-Type": "application/json"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as c:
        host = ForgejoHost(
            c,
            base_url="https://forge.example",
            token="t" * 40,
            sleep=sleeps,
            timeout=httpx.Timeout(0.05),  # each attempt: 0.25 s for the whole answer
            retry=RetryPolicy(max_attempts=1),
        )
        with pytest.raises(HostUnavailable, match="no whole answer"):
            await host.list_issue_comments(DEMO, 1)
    assert len(sent) < 2_000, "the dripped answer was read to its end"

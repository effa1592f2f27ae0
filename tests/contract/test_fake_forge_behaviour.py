"""The fake forge behaves like Gitea where clients notice: auth, paging headers, injected faults."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import httpx
import pytest
from tests.fakes.forge import FakeForge
from tests.fakes.forge_state import PullRecord

PULLS = "/repos/{owner}/{repo}/pulls"


def _api(forge: FakeForge, auth: str | None = None) -> httpx.Client:
    headers = {"Authorization": auth} if auth else {}
    return httpx.Client(base_url=forge.api_url, headers=headers, trust_env=False, timeout=10)


@pytest.mark.parametrize("scheme", ["token", "Bearer"])
def test_fake_forge_accepts_token_and_bearer_headers(fake_forge: FakeForge, scheme: str) -> None:
    with _api(fake_forge, f"{scheme} {fake_forge.bot_token}") as api:
        assert api.get("/user").json()["login"] == "auto-review"


def test_fake_forge_refuses_api_calls_without_a_token(fake_forge: FakeForge) -> None:
    with _api(fake_forge) as api:
        assert api.get("/user").status_code == 401
        assert api.get("/version").status_code == 200  # positive control: version is public


def test_fake_forge_hides_private_repositories_from_strangers(fake_forge: FakeForge) -> None:
    fake_forge.create_repo("alice/secret", {"a": "b"}, private=True, bot_permission=None)
    with _api(fake_forge, f"token {fake_forge.bot_token}") as api:
        assert api.get("/repos/alice/secret").status_code == 404
    with _api(fake_forge, f"token {fake_forge.token_for('alice')}") as api:
        assert api.get("/repos/alice/secret").status_code == 200


def test_fake_forge_compare_page_ignores_the_api_token_like_gitea(fake_forge: FakeForge) -> None:
    """Gitea honours an API token on web routes only for git, raw, attachments, LFS, archives
    and feeds (services/auth): the compare page is anonymous, so a private repository is 404."""
    for name, private in (("alice/secret", True), ("alice/open", False)):
        fake_forge.create_repo(name, {"a": "1\n"}, private=private)  # the bot may write
        fake_forge.push(name, "feature", {"a": "2\n"})
    bot = {"Authorization": f"token {fake_forge.bot_token}"}
    with httpx.Client(base_url=fake_forge.url, headers=bot, trust_env=False, timeout=10) as web:
        assert web.get("/alice/secret/compare/main...feature.diff").status_code == 404
        public = web.get("/alice/open/compare/main...feature.diff")  # positive control
        assert (public.status_code, "+2" in public.text) == (200, True)
    with _api(fake_forge, bot["Authorization"]) as api:  # the same token reads it on the API
        assert api.get("/repos/alice/secret/pulls").status_code == 200


def test_fake_forge_pages_with_link_and_total_count_like_gitea(
    fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    for _ in range(4):
        fake_forge.open_pull("alice/demo", head="feature", author="alice")
    with _api(fake_forge, f"token {fake_forge.bot_token}") as api:
        first = api.get("/repos/alice/demo/pulls", params={"limit": 2})
        last = api.get("/repos/alice/demo/pulls", params={"limit": 2, "page": 3})
    assert first.headers["x-total-count"] == "5"
    assert [p["number"] for p in first.json()] == [5, 4]
    assert 'rel="next"' in first.headers["link"]
    assert "page=3&limit=2" in first.headers["link"]
    assert [p["number"] for p in last.json()] == [1]
    assert 'rel="next"' not in last.headers["link"]


def test_fake_forge_clamps_the_page_size_to_its_maximum(
    fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    fake_forge.state.max_page_size = 2
    for _ in range(3):
        fake_forge.open_pull("alice/demo", head="feature", author="alice")
    with _api(fake_forge, f"token {fake_forge.bot_token}") as api:
        assert len(api.get("/repos/alice/demo/pulls", params={"limit": 50}).json()) == 2


def test_fake_forge_injects_failures_for_the_next_calls_only(
    fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    fake_forge.fail(PULLS, status=429, times=2, retry_after="5")
    with _api(fake_forge, f"token {fake_forge.bot_token}") as api:
        answers = [api.get("/repos/alice/demo/pulls") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "5"
    assert [c.injected for c in fake_forge.calls_to(PULLS)] == [True, True, False]


def test_fake_forge_refuses_to_inject_on_an_unknown_route(fake_forge: FakeForge) -> None:
    with pytest.raises(ValueError, match="no such route"):
        fake_forge.fail("/repos/{owner}/{repo}/nope", status=500)
    with pytest.raises(ValueError, match="inject one of"):
        fake_forge.fail(PULLS, status=418)


def test_fake_forge_hang_holds_the_call_until_the_client_gives_up(
    fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    fake_forge.hang(PULLS)
    with _api(fake_forge, f"token {fake_forge.bot_token}") as api:
        with pytest.raises(httpx.ReadTimeout):
            api.get("/repos/alice/demo/pulls", timeout=0.2)
        assert api.get("/repos/alice/demo/pulls").status_code == 200  # only the next call hangs


def test_fake_forge_stops_promptly_while_a_call_hangs(tmp_path: Path) -> None:
    forge = FakeForge(tmp_path / "f").start()
    forge.create_repo("alice/demo", {"a": "b"})
    forge.hang(PULLS)
    done = threading.Event()

    def call() -> None:
        with _api(forge, f"token {forge.bot_token}") as api, contextlib.suppress(httpx.HTTPError):
            api.get("/repos/alice/demo/pulls", timeout=30)
        done.set()

    worker = threading.Thread(target=call)
    worker.start()
    forge.stop()
    worker.join(15)
    assert done.is_set()


def test_fake_forge_records_state_tests_can_inspect(
    fake_forge: FakeForge, forge_repo: PullRecord
) -> None:
    head = fake_forge.repo("alice/demo").git.resolve("refs/heads/feature")
    with _api(fake_forge, f"token {fake_forge.bot_token}") as api:
        api.post("/repos/alice/demo/issues/1/comments", json={"body": "hi"})
        api.post(f"/repos/alice/demo/statuses/{head}", json={"state": "success", "context": "c"})
    repo = fake_forge.repo("alice/demo")
    assert [(c.user, c.body) for c in repo.issue_comments] == [("auto-review", "hi")]
    assert [(s.sha, s.state, s.creator) for s in repo.statuses] == [
        (head, "success", "auto-review")
    ]

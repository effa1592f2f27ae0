"""End to end: the review pipeline against the fake forge (real git) and the scripted model."""

from __future__ import annotations

import asyncio

from tests.e2e._harness import Harness, finding, line_of, review_answer
from tests.fakes.forge import FakeForge

from auto_review.review import Outcome

BASE_DB = """import sqlite3
import subprocess


def find_user(conn, name):
    cur = conn.cursor()
    cur.execute("SELECT * FROM users WHERE name = ?", (name,))
    return cur.fetchone()


def archive(path):
    return subprocess.run(["tar", "czf", "out.tgz", path], check=True)
"""
HEAD_DB = (
    BASE_DB.replace(  # noqa: S608 (test data: the seeded bug)
        'cur.execute("SELECT * FROM users WHERE name = ?", (name,))',
        "cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")",
    ).replace(
        'return subprocess.run(["tar", "czf", "out.tgz", path], check=True)',
        'return subprocess.run(f"tar czf out.tgz {path}", shell=True, check=True)',
    )
    + "\n\ndef total(items):\n    return sum(i.price for i in items)\n"
)
SQL = "cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")"
SHELL = 'subprocess.run(f"tar czf out.tgz {path}", shell=True, check=True)'


def _seeded_pr(
    forge: FakeForge,
    *,
    body: str = "Refactor queries",
    head_extra: dict[str, str | None] | None = None,
) -> int:
    forge.create_repo(
        "alice/shop",
        {
            "src/db.py": BASE_DB,
            "README.md": "# shop\n",
            ".auto_review.yaml": "guidelines: Be strict about SQL.\n",
        },
    )
    forge.push(
        "alice/shop", "feature", {"src/db.py": HEAD_DB, "yarn.lock": "x\n", **(head_extra or {})}
    )
    return forge.open_pull(
        "alice/shop", head="feature", title="Refactor db", body=body, author="alice"
    ).number


def _statuses(forge: FakeForge) -> list[tuple[str, str]]:
    return [(s.state, s.description) for s in forge.repo("alice/shop").statuses]


def test_seeded_bugs_get_exact_inline_comments_and_failure_status(harness: Harness) -> None:
    number = _seeded_pr(harness.forge)
    sql_line, shell_line = line_of(HEAD_DB, SQL), line_of(HEAD_DB, SHELL)
    harness.answer_reviews(
        review_answer(
            finding("src/db.py", sql_line, SQL, message="SQL injection via f-string"),
            finding("src/db.py", shell_line, SHELL, message="Shell injection via shell=True"),
            # hallucinated: wrong line and code that is not in the file
            finding("src/db.py", 3, "eval(request.args['x'])", message="eval of user input"),
        )
    )
    outcome = asyncio.run(harness.run("alice/shop", number))
    assert outcome.outcome is Outcome.POSTED
    assert (outcome.errors, outcome.dropped_by_verifier) == (2, 1)
    reasoning = [u for u in outcome.usage_by_tier if u.tier == "reasoning"]
    assert len(reasoning) == 1
    assert reasoning[0].prompt_tokens > 0
    assert sum(u.prompt_tokens for u in outcome.usage_by_tier) == outcome.prompt_tokens
    [review] = harness.forge.repo("alice/shop").reviews
    assert review.state == "REQUEST_CHANGES"
    assert sorted((c.path, c.new_line) for c in review.comments) == [
        ("src/db.py", sql_line),
        ("src/db.py", shell_line),
    ]
    assert "eval" not in review.body
    assert "yarn.lock" in review.body  # skipped file is named
    states = _statuses(harness.forge)
    assert states[0][0] == "pending"
    assert states[-1] == ("failure", "auto-review: 2 errors")
    # The prompt carried numbered new-hunk lines and framed PR text as untrusted data.
    [prompt] = harness.review_requests()
    text = prompt.text()
    assert f"{sql_line} +    {SQL}" in text
    assert "<<<UNTRUSTED diff" in text
    assert "Be strict about SQL." in text  # base-branch guidelines


def test_clean_pr_gets_comment_event_and_success_status(harness: Harness) -> None:
    number = _seeded_pr(harness.forge)
    harness.answer_reviews(review_answer())
    outcome = asyncio.run(harness.run("alice/shop", number))
    assert outcome.outcome is Outcome.POSTED
    [review] = harness.forge.repo("alice/shop").reviews
    assert review.state == "COMMENT"
    assert _statuses(harness.forge)[-1] == ("success", "auto-review: no findings")

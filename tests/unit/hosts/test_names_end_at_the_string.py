"""Names checked by a pattern end where the string ends: ``$`` also matched before a final
newline, so ``"owner\\n"`` passed as an owner, a login, a ref or a prompt label."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from auto_review.errors import HostError
from auto_review.hosts import RepoRef
from auto_review.hosts._forgejo_json import check_login, check_ref
from auto_review.llm.prompting import PromptBuilder


@pytest.mark.parametrize(("owner", "name"), [("owner\n", "repo"), ("owner", "repo\n")])
def test_a_repository_name_with_a_final_newline_is_refused(owner: str, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        RepoRef(owner, name)
    assert RepoRef(owner.strip(), name.strip()).full_name == "owner/repo"  # positive control


@pytest.mark.parametrize("check", [check_login, check_ref])
def test_a_login_or_ref_with_a_final_newline_is_refused(check: Callable[[str], str]) -> None:
    with pytest.raises(HostError):
        check("main\n")
    assert check("main") == "main"


def test_a_prompt_label_with_a_final_newline_is_refused() -> None:
    builder = PromptBuilder()
    with pytest.raises(ValueError, match="labels"):
        builder.untrusted("diff\n", "x")
    builder.untrusted("diff", "x")  # positive control

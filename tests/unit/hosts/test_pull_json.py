"""The forge's PullRequest JSON to the model: the optional ``merge_base``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from auto_review.errors import HostError
from auto_review.hosts import RepoRef, is_sha
from auto_review.hosts._forgejo_json import pull

RECORDED = Path(__file__).parents[2] / "data/webhooks/forgejo/HookPullRequestUpdated.json"
REPO = RepoRef("o", "r")


def _recorded_pull() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())["pull_request"]
    return data


def test_a_recorded_pull_requests_merge_base_is_carried() -> None:
    data = _recorded_pull()
    assert pull(REPO, data).merge_base == data["merge_base"]


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        42,
        "29BE01C073851CF0DB0C6A466E396B725A670453",  # not as git spells it
        "29be01c073",  # abbreviated
        "--upload-pack=touch /tmp/x",
    ],
)
def test_an_invalid_merge_base_is_none_and_the_pr_still_maps(value: object) -> None:
    data = copy.deepcopy(_recorded_pull())
    data["merge_base"] = value
    pr = pull(REPO, data)
    assert pr.merge_base is None
    assert pr.head_sha == data["head"]["sha"]


def test_an_absent_merge_base_is_none() -> None:
    data = _recorded_pull()
    del data["merge_base"]
    assert pull(REPO, data).merge_base is None


def test_a_sha_with_a_final_newline_is_no_object_id() -> None:
    sha = "29be01c073851cf0db0c6a466e396b725a670453"
    assert is_sha(sha)
    assert not is_sha(sha + "\n")
    data = copy.deepcopy(_recorded_pull())
    data["merge_base"] = sha + "\n"
    assert pull(REPO, data).merge_base is None
    data["head"]["sha"] += "\n"
    with pytest.raises(HostError, match="invalid commit SHA"):
        pull(REPO, data)

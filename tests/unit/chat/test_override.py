"""Approval override: only a base-branch-listed approver with a real reason gets an approval."""

from __future__ import annotations

import dataclasses

import pytest
from tests.unit.chat._doubles import BASE, HEAD, REPO, MemoryHost, Mention
from tests.unit.chat.conftest import ServiceFactory

from auto_review.chat import ChatLedger, is_substantive_reason
from auto_review.hosts import Permission, Review, ReviewEvent
from auto_review.store import Store

pytestmark = pytest.mark.anyio

REASON = "The flagged subtraction is intentional: this module models saturating addition."
BASE_CONFIG = b"override_approvers:\n  - olga\n"


def _block(host: MemoryHost, head: str = HEAD) -> None:
    # A pipeline review: its body ends with the marker naming the head it reviewed.
    body = f"fix it\n\n<!-- auto-review:review head={head} -->"
    host.reviews.append(Review(5, "auto-review", "REQUEST_CHANGES", body, head))


def _approvals(host: MemoryHost) -> list[str]:
    return [r.body for r in host.posted_reviews if r.event is ReviewEvent.APPROVED]


async def test_listed_approver_with_reason_gets_an_approval_recorded_on_the_pr(
    make_service: ServiceFactory, host: MemoryHost, store: Store
) -> None:
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="olga"))
    approvals = _approvals(host)
    assert len(approvals) == 1
    assert "olga" in approvals[0]
    assert "saturating addition" in approvals[0]
    assert "review 5" in approvals[0]
    assert host.posted_reviews[0].commit_id == HEAD
    records = ChatLedger(store).overrides(REPO, 7)
    approval_id = host.reviews[-1].id
    assert [(r.login, r.review_id, r.approval_id) for r in records] == [("olga", 5, approval_id)]


async def test_reason_on_following_lines_is_accepted(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    _block(host)
    host.files[(BASE, ".auto_review.yml")] = BASE_CONFIG
    await make_service().run(Mention(f"@auto-review approve\n{REASON}", author="olga"))
    assert len(_approvals(host)) == 1


async def test_writer_not_listed_is_told_why_not(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="maria"))
    assert _approvals(host) == []
    assert "override_approvers" in host.posted_comments[0]
    assert "maria is not listed" in host.posted_comments[0]


async def test_listing_in_the_pr_head_does_not_authorise(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    """Attack: the PR adds its author to override_approvers in its own branch.

    Control: the approver list is read from the base commit only.
    """
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    host.files[(HEAD, ".auto_review.yaml")] = b"override_approvers: [maria]\n"
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="maria"))
    assert _approvals(host) == []


async def test_read_only_approver_is_refused(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = b"override_approvers: [reader]\n"
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="reader"))
    assert _approvals(host) == []
    assert "needs write access" in host.posted_comments[0]


@pytest.mark.parametrize("reason", ["", "lgtm", "please approve, thanks!", "ok ok ok ok ok ok ok"])
async def test_approver_without_substantive_reason_is_asked_for_one(
    make_service: ServiceFactory, host: MemoryHost, reason: str
) -> None:
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    await make_service().run(Mention(f"@auto-review approve {reason}", author="olga"))
    assert _approvals(host) == []
    assert "Please say why" in host.posted_comments[0]


async def test_nothing_to_override_when_the_bot_did_not_request_changes(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    host.reviews.append(Review(5, "auto-review", "REQUEST_CHANGES", "fix", HEAD))
    host.reviews.append(Review(6, "auto-review", "APPROVED", "fine now", HEAD))
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="olga"))
    assert _approvals(host) == []
    assert "nothing to override" in host.posted_comments[0]


async def test_later_comment_review_does_not_hide_the_blocking_review(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    _block(host)
    host.reviews.append(Review(9, "auto-review", "COMMENT", "suggestions", HEAD))
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="olga"))
    assert len(_approvals(host)) == 1


async def test_someone_elses_request_changes_is_not_overridable(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    host.reviews.append(Review(5, "human", "REQUEST_CHANGES", "no", HEAD))
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="olga"))
    assert _approvals(host) == []


async def test_override_is_posted_once_when_redelivered(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    service = make_service()
    mention = Mention(f"@auto-review approve {REASON}", author="olga", comment_id=8)
    await service.run(mention)
    await service.run(mention)
    assert len(_approvals(host)) == 1


def test_reason_check_wants_words_and_substance() -> None:
    assert is_substantive_reason(REASON, min_words=6, min_chars=30)
    assert not is_substantive_reason("lgtm lgtm lgtm lgtm lgtm lgtm", min_words=6, min_chars=30)
    assert not is_substantive_reason("fine", min_words=6, min_chars=30)


def test_admin_counts_as_write() -> None:
    assert Permission.ADMIN.can_write


async def test_failed_approval_post_records_nothing_and_a_retry_approves_once(
    make_service: ServiceFactory, host: MemoryHost, store: Store
) -> None:
    from auto_review.errors import HostUnavailable

    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    original = host.create_review
    calls = {"n": 0}

    async def flaky(*args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise HostUnavailable("forge down")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    host.create_review = flaky  # type: ignore[method-assign]
    service = make_service()
    mention = Mention(f"@auto-review approve {REASON}", author="olga", comment_id=8)
    with pytest.raises(HostUnavailable):
        await service.run(mention)
    assert ChatLedger(store).overrides(REPO, 7) == []
    await service.run(mention)  # the queue's retry
    assert len(_approvals(host)) == 1
    assert len(ChatLedger(store).overrides(REPO, 7)) == 1


async def test_listed_approver_cannot_override_on_their_own_pull_request(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    # Forgejo refuses an author's approval of their own PR; the bot's approval must not be the
    # way round that: an override is a second person vouching for the change.
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    host.prs[7] = dataclasses.replace(host.prs[7], author_login="Olga")
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="olga"))
    assert _approvals(host) == []
    assert "You opened this pull request" in host.posted_comments[0]


async def test_override_does_not_stretch_to_a_head_the_bot_has_not_reviewed(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    # The bot blocked an older head; the author pushed since. The approver's reason is about
    # the findings on the old code: an approval at the new head would vouch for unseen code.
    _block(host, head="c" * 40)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="olga"))
    assert _approvals(host) == []
    assert "not reviewed the current head" in host.posted_comments[0]
    # Positive control: once the bot's review of this head (a comment review: nothing new
    # blocks, but the old request for changes still stands) is there, the override goes through.
    # A gateway job marks its run after the head (F87); that is still a review of the head.
    marker = f"<!-- auto-review:review head={HEAD} run=8-1764460800000 -->"
    host.reviews.append(Review(8, "auto-review", "COMMENT", f"fixed\n\n{marker}", HEAD))
    await make_service().run(Mention(f"@auto-review approve {REASON}", author="olga", comment_id=2))
    assert len(_approvals(host)) == 1


async def test_quoted_reason_cannot_ping_or_carry_a_review_marker_in_the_bots_name(
    make_service: ServiceFactory, host: MemoryHost
) -> None:
    # The reason is echoed in the bot's approval review: a live marker there would later count
    # as the bot's review of that head, and a team mention would ping in the bot's name.
    _block(host)
    host.files[(BASE, ".auto_review.yaml")] = BASE_CONFIG
    marker = f"<!-- auto-review:review head={'d' * 40} -->"
    reason = f"{REASON} cc @acme/owners {marker}"
    await make_service().run(Mention(f"@auto-review approve {reason}", author="olga"))
    [approval] = _approvals(host)
    assert "saturating addition" in approval
    assert marker not in approval
    assert "@acme/owners" not in approval

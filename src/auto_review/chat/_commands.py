"""Handlers that need no model: help, review, pause/resume, learnings, config."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import yaml

from auto_review.chat._context import ChatDeps, Turn
from auto_review.chat._parser import CommandKind
from auto_review.chat._replies import Turnout, help_text, unknown_text
from auto_review.errors import LearningRejected
from auto_review.memory import is_paused, set_paused
from auto_review.review import Trigger
from auto_review.review.config import load_repo_config
from auto_review.review.defang import defang

__all__ = [
    "handle_config",
    "handle_forget",
    "handle_help",
    "handle_learnings",
    "handle_pause",
    "handle_remember",
    "handle_review",
    "handle_unknown",
]

_LIST_TEXT_CHARS = 160


async def handle_help(deps: ChatDeps, turn: Turn) -> Turnout:
    """The command list."""
    return Turnout(help_text(deps.config.mention_name))


async def handle_unknown(deps: ChatDeps, turn: Turn) -> Turnout:
    """Help, led by a guess at the command that was meant."""
    return Turnout(unknown_text(turn.command, deps.config.mention_name))


async def handle_review(deps: ChatDeps, turn: Turn) -> Turnout:
    """Queue a forced review of the current head (``full review``: ignore incremental state)."""
    pr = turn.pr
    if not pr.is_open or pr.merged:
        return Turnout("This pull request is closed; there is nothing to review.")
    if pr.draft:
        return Turnout("This pull request is a draft. Mark it ready for review, then ask again.")
    if deps.queue is None:
        return Turnout("Reviews cannot be queued from chat in this deployment (no job queue).")
    full = turn.command.kind is CommandKind.FULL_REVIEW
    result = deps.queue.enqueue_review(
        turn.repo, pr.number, pr.head_sha, trigger=Trigger.CHAT, force=True, full=full
    )
    what = "A full review" if full else "A review"
    state = "is queued" if result.created else "was already queued"
    return Turnout(
        f"{what} of `{pr.head_sha[:12]}` {state} (job {result.job_id}). It runs even if CI has "
        "not finished and even if automatic reviews are paused."
    )


async def handle_pause(deps: ChatDeps, turn: Turn) -> Turnout:
    """Pause or resume automatic reviews of this PR (``memory.pauses``)."""
    paused = turn.command.kind is CommandKind.PAUSE
    changed = set_paused(deps.store, turn.repo, turn.pr.number, paused=paused, by=turn.author)
    mention = deps.config.mention_name
    if paused:
        if not changed:
            return Turnout(f"Automatic reviews were already paused here. `@{mention} resume`.")
        return Turnout(
            "Automatic reviews of this pull request are paused. "
            f"`@{mention} review` still works; `@{mention} resume` restarts them."
        )
    if not changed:
        return Turnout("Automatic reviews were not paused here; nothing changed.")
    return Turnout("Automatic reviews of this pull request are back on.")


async def handle_remember(deps: ChatDeps, turn: Turn) -> Turnout:
    """Store a learning for this repository only (``memory.learnings``)."""
    text = turn.command.argument
    mention = deps.config.mention_name
    if not text.strip():
        return Turnout(f"What should I remember? `@{mention} remember <text>`.")
    if turn.command.truncated:
        return Turnout("That is too long to remember; keep a learning short and specific.")
    try:
        learning = deps.learnings.add(
            turn.repo, text, author=turn.author, source="chat", number=turn.pr.number
        )
    except LearningRejected as exc:
        return Turnout(f"I could not remember that: {exc.message}.")
    return Turnout(
        f"Remembered as learning {learning.id} for `{turn.repo}` only. Future reviews of this "
        f"repository will see it as a note (not as an instruction). "
        f"`@{mention} forget {learning.id}` removes it."
    )


async def handle_forget(deps: ChatDeps, turn: Turn) -> Turnout:
    """Delete a learning of this repository; other repositories' ids are not found."""
    raw = turn.command.argument.split()[0].lstrip("#") if turn.command.argument.split() else ""
    mention = deps.config.mention_name
    if not raw.isdigit() or len(raw) > 18:
        return Turnout(
            f"Which learning? `@{mention} forget <id>`; `@{mention} learnings` lists them."
        )
    learning_id = int(raw)
    if deps.learnings.forget(turn.repo, learning_id):
        return Turnout(f"Forgot learning {learning_id} of `{turn.repo}`.")
    return Turnout(f"`{turn.repo}` has no learning {learning_id}; nothing was deleted.")


async def handle_learnings(deps: ChatDeps, turn: Turn) -> Turnout:
    """This repository's learnings as a table, defanged.

    The bot echoes a writer's text in its own name, and the bot may write where that writer may
    not: a live ``closes other/repo#5`` would close that issue when this PR merges.
    """
    items = deps.learnings.list(turn.repo)
    if not items:
        return Turnout(f"`{turn.repo}` has no learnings yet.")
    rows = []
    for item in items:
        text = " ".join(item.text.split())
        if len(text) > _LIST_TEXT_CHARS:
            text = text[:_LIST_TEXT_CHARS] + "…"
        text = defang(text).replace("|", "\\|").replace("`", "'")
        rows.append(f"| {item.id} | {text} | {defang(item.author)} |")
    table = "\n".join(["| id | learning | added by |", "| --- | --- | --- |", *rows])
    return Turnout(f"Learnings of `{turn.repo}` ({len(items)}):\n\n{table}")


async def handle_config(deps: ChatDeps, turn: Turn) -> Turnout:
    """The base branch's repo config over the defaults; gateway-wide values where it is silent."""
    loaded = await load_repo_config(deps.host, turn.repo, turn.pr.base_sha)
    effective: dict[str, Any] = _plain(dataclasses.asdict(loaded.config))
    for key, value in deps.config.repo_defaults:
        if effective.get(key) is None:
            effective[key] = value
    dumped = yaml.safe_dump(effective, sort_keys=True, allow_unicode=True).replace("`", "'")
    source = f"`{loaded.source}` on `{turn.pr.base_ref}`" if loaded.source else "defaults only"
    lines = [
        f"Effective configuration for this pull request ({source}; the PR's own branch is "
        "never read for this):",
        "",
        "```yaml",
        dumped.rstrip(),
        "```",
        "",
        f"- automatic reviews paused here: {is_paused(deps.store, turn.repo, turn.pr.number)}",
        f"- chat limits: {deps.config.user_rate_per_hour} model commands per user per hour, "
        f"{deps.config.pr_rate_per_hour} per pull request per hour; "
        f"{deps.config.free_user_rate_per_hour} `help`, `config` and `learnings` commands per "
        f"user per hour, {deps.config.free_pr_rate_per_hour} per pull request per hour",
    ]
    lines.extend(f"- warning: {warning}" for warning in loaded.warnings)
    lines.extend(f"- problem: {problem} (that key uses its default)" for problem in loaded.problems)
    return Turnout(defang("\n".join(lines)))


def _plain(value: Any) -> Any:
    """Dataclass-dict values as YAML-safe builtins (tuples to lists, enums to their value)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value

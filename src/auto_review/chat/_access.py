"""Who may run which command, and how often: permission tiers, a short permission cache, limits.

- Commands that spend model budget or change state need write access to the repository, read
  from the forge's collaborator-permission API (``ReviewHost.get_permission``), cached for
  ``ChatConfig.permission_ttl_secs`` so a busy thread does not hammer the forge.
- Model-spending commands are counted per user (across repositories) and per PR over the last
  hour; over either limit the command is refused. The commands anyone may run spend no model
  budget but each makes the bot post: they are counted the same way, apart, against their own
  (larger) limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from auto_review.chat._ledger import ChatLedger, UsageTier
from auto_review.chat._parser import CommandKind
from auto_review.chat._ports import ChatConfig
from auto_review.errors import HostAuthError, HostNotFound
from auto_review.hosts import Permission, RepoRef, ReviewHost

__all__ = [
    "FREE_COMMANDS",
    "MODEL_COMMANDS",
    "WRITE_COMMANDS",
    "PermissionCache",
    "RateDecision",
    "check_rate",
]

# Spend model budget: counted against the rate limits.
MODEL_COMMANDS = frozenset(
    {
        CommandKind.REVIEW,
        CommandKind.FULL_REVIEW,
        CommandKind.ASK,
        CommandKind.EXPLAIN,
        CommandKind.AUTOFIX,
        CommandKind.DOCSTRING,
        CommandKind.TESTS,
    }
)
# Need write access: everything that spends budget or changes state.
WRITE_COMMANDS = MODEL_COMMANDS | {
    CommandKind.REMEMBER,
    CommandKind.FORGET,
    CommandKind.PAUSE,
    CommandKind.RESUME,
    CommandKind.APPROVE,
}
# Open to anyone who can comment and spend no model budget; each still makes the bot post a
# reply (an unknown word is answered with help), so they have limits of their own.
FREE_COMMANDS = frozenset(
    {CommandKind.HELP, CommandKind.CONFIG, CommandKind.LEARNINGS, CommandKind.UNKNOWN}
)


class PermissionCache:
    """``get_permission`` answers, remembered for ``ttl_secs`` per (repo, login)."""

    def __init__(
        self,
        host: ReviewHost,
        *,
        ttl_secs: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host = host
        self._ttl = ttl_secs
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Permission]] = {}

    async def get(self, repo: RepoRef, login: str) -> Permission | None:
        """``login``'s permission; None when the forge will not tell us (fail closed)."""
        key = (repo.full_name, login.lower())
        now = self._clock()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            permission = await self._host.get_permission(repo, login)
        except HostNotFound:
            permission = Permission.NONE  # no such user here: certainly no write access
        except HostAuthError:
            # Forgejo answers other users' permissions only to repo admins; without that the
            # bot cannot tell writers from readers, so it treats everyone as unverified.
            return None
        if len(self._entries) > 4096:  # bound memory on a busy gateway
            self._entries.clear()
        self._entries[key] = (now, permission)
        return permission


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    scope: str = ""  # "user" or "pr" when refused
    retry_in_minutes: int = 0


def check_rate(
    ledger: ChatLedger,
    config: ChatConfig,
    repo: RepoRef,
    number: int,
    login: str,
    *,
    tier: UsageTier = "model",
) -> RateDecision:
    """Whether ``login`` may run one more command of ``tier`` on ``repo#number`` now."""
    by_user, on_pr = ledger.usage_last_hour(repo, number, login, tier=tier)
    if tier == "model":
        per_user, per_pr = config.user_rate_per_hour, config.pr_rate_per_hour
    else:
        per_user, per_pr = config.free_user_rate_per_hour, config.free_pr_rate_per_hour
    scope = ""
    if by_user >= per_user:
        scope = "user"
    elif on_pr >= per_pr:
        scope = "pr"
    if not scope:
        return RateDecision(True)
    age = ledger.oldest_usage_age(repo, number, login, tier=tier)
    minutes = max(1, int((3600.0 - age) // 60) + 1)
    return RateDecision(False, scope, minutes)

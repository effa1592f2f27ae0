"""``auth init``: mint the bot's token, with errors that name the fix.

The forge's own messages for the two common mistakes are terse ("token is required" for a
wrong password, "name has been used already"); this adds what to do about them.
"""

from __future__ import annotations

from pydantic import SecretStr

from auto_review.errors import HostAuthError, HostError
from auto_review.hosts import BOT_TOKEN_SCOPES, AccessToken, create_access_token

__all__ = ["mint_bot_token"]

_HTTP_BAD_REQUEST = 400
_HTTP_UNPROCESSABLE = 422


async def mint_bot_token(
    base_url: str, username: str, password: SecretStr, token_name: str
) -> AccessToken:
    """A new token of ``username`` with ``BOT_TOKEN_SCOPES``; ``HostError`` naming the fix."""
    try:
        return await create_access_token(base_url, username, password, token_name, BOT_TOKEN_SCOPES)
    except HostAuthError as exc:
        raise HostAuthError(
            f"the forge refused the login of @{username} ({exc.message}): check --username and "
            "the password; an account with two-factor authentication cannot mint tokens with a "
            "password (create the token in the forge's settings instead)",
            status=exc.status,
        ) from exc
    except HostError as exc:
        if exc.status in (_HTTP_BAD_REQUEST, _HTTP_UNPROCESSABLE) and "name" in exc.message:
            raise HostError(
                f"{exc.message}: choose another --token-name, or delete the old token in the "
                "forge's settings",
                status=exc.status,
            ) from exc
        raise

"""``@bot`` chat commands in PR conversations and review threads.

``ChatService(host=..., store=..., config=ChatConfig.from_settings(settings), queue=...,
llm=...)`` answers one mention per ``run(request)`` call; it has the shape of the job queue's
``ChatRunner``. ``parse_comment`` is the pure parser. Pauses and learnings live in
``auto_review.memory`` (``is_paused``, ``LearningsStore``) so the pipeline can read them too.
"""

from auto_review.chat._access import MODEL_COMMANDS, WRITE_COMMANDS, RateDecision, check_rate
from auto_review.chat._ledger import ChatLedger, OverrideRecord, ReplyKey
from auto_review.chat._override import is_substantive_reason
from auto_review.chat._parser import (
    MAX_COMMANDS,
    MAX_COMMENT_CHARS,
    Command,
    CommandKind,
    ParsedComment,
    mention_handles,
    parse_comment,
)
from auto_review.chat._ports import ChatConfig, ChatMention, Enqueued, ReviewQueue
from auto_review.chat._replies import help_text
from auto_review.chat._service import ChatService, reply_marker

__all__ = [
    "MAX_COMMANDS",
    "MAX_COMMENT_CHARS",
    "MODEL_COMMANDS",
    "WRITE_COMMANDS",
    "ChatConfig",
    "ChatLedger",
    "ChatMention",
    "ChatService",
    "Command",
    "CommandKind",
    "Enqueued",
    "OverrideRecord",
    "ParsedComment",
    "RateDecision",
    "ReplyKey",
    "ReviewQueue",
    "check_rate",
    "help_text",
    "is_substantive_reason",
    "mention_handles",
    "parse_comment",
    "reply_marker",
]

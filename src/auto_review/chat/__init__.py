"""``@bot`` chat commands: parsing, permissions, rate limits and the command handlers."""

from auto_review.chat._parser import Command, CommandKind, ParsedComment, parse_comment

__all__ = ["Command", "CommandKind", "ParsedComment", "parse_comment"]

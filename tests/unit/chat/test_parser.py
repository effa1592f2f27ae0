"""The comment parser: which lines are commands, and what each command carries."""

from __future__ import annotations

import pytest

from auto_review.chat import CommandKind, parse_comment
from auto_review.chat._parser import MAX_ARGUMENT_CHARS, MAX_COMMANDS, mention_handles


def kinds(body: str, name: str = "auto-review") -> list[CommandKind]:
    return [c.kind for c in parse_comment(body, name).commands]


def test_parser_finds_command_at_line_start() -> None:
    assert kinds("@auto-review help") == [CommandKind.HELP]


def test_parser_ignores_mention_in_mid_sentence() -> None:
    assert kinds("thanks @auto-review help") == []


def test_parser_matches_handle_in_any_case() -> None:
    assert kinds("@Auto-Review REVIEW") == [CommandKind.REVIEW]


def test_parser_accepts_underscore_alias_for_auto_review() -> None:
    assert kinds("@auto_review pause") == [CommandKind.PAUSE]


def test_parser_refuses_underscore_alias_for_other_names() -> None:
    assert kinds("@my_bot pause", "my-bot") == []
    assert kinds("@my-bot pause", "my-bot") == [CommandKind.PAUSE]
    assert mention_handles("my-bot") == ("@my-bot",)


def test_parser_refuses_longer_handle_that_shares_prefix() -> None:
    assert kinds("@auto-reviewer help") == []


def test_parser_accepts_separator_after_handle() -> None:
    assert kinds("@auto-review: resume") == [CommandKind.RESUME]
    assert kinds("  @auto-review, config") == [CommandKind.CONFIG]


def test_parser_ignores_quoted_lines() -> None:
    assert kinds("> @auto-review review\nI quoted that") == []


@pytest.mark.parametrize(
    "body",
    [
        "\uff20auto-review approve",  # fullwidth at sign
        "@auto-review\u200b approve",  # zero-width space glued to the handle
        "@auto\u200b-review approve",
        "\u200b@auto-review approve",  # invisible character before the handle
        "@\u0430uto-review approve",  # Cyrillic a
        ">@auto-review approve",  # a quote without the space
        "  > > @auto-review approve",  # a nested quote
    ],
)
def test_parser_lookalike_and_hidden_handles_are_not_commands(body: str) -> None:
    # Only the exact handle at a line's start is a command: lookalikes, invisible characters
    # and quotes (which may show someone else's command) are text.
    assert kinds(body) == []
    assert kinds("@auto-review approve") == [CommandKind.APPROVE]  # positive control


def test_parser_ignores_inline_code() -> None:
    assert kinds("`@auto-review review` is how you ask") == []


def test_parser_ignores_fenced_code_blocks() -> None:
    body = "Example:\n```\n@auto-review review\n```\n~~~md\n@auto-review pause\n~~~"
    assert kinds(body) == []


def test_parser_keeps_fence_open_until_matching_marker() -> None:
    body = "````\n```\n@auto-review review\n```\n````\n@auto-review help"
    assert kinds(body) == [CommandKind.HELP]


def test_parser_ignores_indented_code() -> None:
    assert kinds("    @auto-review review") == []


def test_parser_returns_every_command_line_in_order() -> None:
    body = "@auto-review remember use tabs\n@auto-review review"
    parsed = parse_comment(body, "auto-review")
    assert [c.kind for c in parsed.commands] == [CommandKind.REMEMBER, CommandKind.REVIEW]
    assert parsed.commands[0].argument == "use tabs"


def test_parser_drops_commands_beyond_the_cap() -> None:
    body = "\n".join(["@auto-review help"] * (MAX_COMMANDS + 2))
    parsed = parse_comment(body, "auto-review")
    assert len(parsed.commands) == MAX_COMMANDS
    assert parsed.dropped == 2


def test_parser_answers_unknown_single_word_as_unknown() -> None:
    parsed = parse_comment("@auto-review reveiw", "auto-review")
    assert parsed.commands[0].kind is CommandKind.UNKNOWN
    assert parsed.commands[0].keyword == "reveiw"


def test_parser_treats_free_text_as_question() -> None:
    parsed = parse_comment("@auto-review why does this loop never end", "auto-review")
    assert parsed.commands[0].kind is CommandKind.ASK
    assert parsed.commands[0].argument == "why does this loop never end"


def test_parser_treats_bare_mention_as_help() -> None:
    assert kinds("@auto-review") == [CommandKind.HELP]


def test_parser_takes_following_lines_as_argument_of_text_commands() -> None:
    body = "@auto-review ask\nIs this thread-safe?\nSee `run()`.\n"
    command = parse_comment(body, "auto-review").commands[0]
    assert command.kind is CommandKind.ASK
    assert command.argument == "Is this thread-safe?\nSee `run()`."


def test_parser_ignores_following_lines_for_commands_without_text() -> None:
    command = parse_comment("@auto-review review\nplease hurry", "auto-review").commands[0]
    assert command.kind is CommandKind.REVIEW
    assert command.argument == ""


def test_parser_recognises_two_word_keywords() -> None:
    assert kinds("@auto-review full review") == [CommandKind.FULL_REVIEW]
    assert kinds("@auto-review generate docstrings") == [CommandKind.DOCSTRING]
    assert kinds("@auto-review Generate Tests") == [CommandKind.TESTS]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("re-review", CommandKind.REVIEW),
        ("autofix", CommandKind.AUTOFIX),
        ("docstring", CommandKind.DOCSTRING),
        ("tests", CommandKind.TESTS),
        ("learnings", CommandKind.LEARNINGS),
        ("forget 3", CommandKind.FORGET),
        ("explain", CommandKind.EXPLAIN),
        ("approve the failing check is a known flake", CommandKind.APPROVE),
    ],
)
def test_parser_maps_keywords_to_commands(text: str, kind: CommandKind) -> None:
    assert kinds(f"@auto-review {text}") == [kind]


def test_parser_caps_long_arguments() -> None:
    command = parse_comment("@auto-review ask " + "x" * 10_000, "auto-review").commands[0]
    assert len(command.argument) == MAX_ARGUMENT_CHARS
    assert command.truncated


def test_parser_handles_crlf_line_endings() -> None:
    assert kinds("hello\r\n@auto-review help\r\n") == [CommandKind.HELP]

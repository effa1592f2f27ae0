"""Model-backed answers: ``ask`` (and free-form questions) and ``explain`` on a finding's thread.

Everything the PR's people wrote (title, body, diff, comments, the question, file text, even the
bot's earlier finding, which quotes PR code) goes into the prompt inside untrusted-data blocks.
The model's answer is only ever posted as text: it cannot queue a review, approve, or change a
setting, whatever it says. That text is defanged (``review/defang.py``) before it is posted: a
prompt-injected answer must not ping people, close issues on merge, load images or carry HTML.
"""

from __future__ import annotations

from auto_review.chat._context import ChatDeps, Turn, chat_tier
from auto_review.chat._replies import Turnout, quote
from auto_review.hosts import Comment
from auto_review.llm import UNTRUSTED_DATA_RULE, LLMClient, Message, PromptBuilder
from auto_review.memory.history import ReviewHistory
from auto_review.review.defang import defang

__all__ = ["MAX_ANSWER_CHARS", "MAX_DIFF_CHARS", "gather_diff", "handle_ask", "handle_explain"]

MAX_DIFF_CHARS = 40_000
MAX_THREAD_CHARS = 8_000
MAX_FILE_CHARS = 12_000
MAX_ANSWER_CHARS = 30_000
_THREAD_COMMENTS = 12
_FILE_WINDOW = 60  # lines of the file shown either side of a review thread's line

_ASK_SYSTEM = (
    "You are auto-review, a code-review assistant answering one question in a pull-request "
    "conversation. Answer concisely in Markdown from the pull request data given; say so when "
    "the data does not tell. You cannot run commands, start reviews, approve, request changes "
    "or change any setting, and nothing you write does so: if the question asks for that, say "
    "that a maintainer must use the bot's explicit commands."
)
_EXPLAIN_SYSTEM = (
    "You are auto-review. Earlier you posted the finding given below on a pull request. Explain "
    "the reasoning behind it and the evidence: quote the exact lines (with line numbers) of the "
    "code it is about, and say plainly if the code shown does not support the finding. Be "
    "concise; Markdown."
)


async def gather_diff(deps: ChatDeps, turn: Turn) -> str:
    """The PR diff, cut at ``MAX_DIFF_CHARS`` with a marker."""
    diff = await deps.host.get_pull_diff(turn.repo, turn.pr.number)
    if len(diff) > MAX_DIFF_CHARS:
        return diff[:MAX_DIFF_CHARS] + "\n[diff truncated]\n"
    return diff


async def _thread(deps: ChatDeps, turn: Turn) -> str:
    if turn.thread is not None:
        comments = [
            c
            for c in await deps.host.list_review_comments(turn.repo, turn.pr.number)
            if (c.path, c.line) == turn.thread
        ]
    else:
        comments = await deps.host.list_issue_comments(turn.repo, turn.pr.number)
    recent = [c for c in comments if c.id != turn.comment.id][-_THREAD_COMMENTS:]
    text = "\n\n".join(f"{c.author_login} wrote:\n{c.body}" for c in recent)
    return text[-MAX_THREAD_CHARS:]


async def _file_window(deps: ChatDeps, turn: Turn, path: str, line: int) -> str:
    """Lines around ``line`` of ``path`` at the PR head, numbered; read-only via the forge API."""
    data = await deps.host.get_file(turn.repo, path, turn.pr.head_sha)
    if data is None:
        return "(file not found at the head commit)"
    lines = data.decode("utf-8", errors="replace").splitlines()
    start = max(1, line - _FILE_WINDOW)
    end = min(len(lines), line + _FILE_WINDOW)
    shown = "\n".join(f"{n}  {lines[n - 1]}" for n in range(start, end + 1))
    return shown[:MAX_FILE_CHARS]


async def _complete(llm: LLMClient, system: str, user: str) -> str:
    completion = await llm.chat(
        chat_tier(llm),
        [Message("system", f"{system}\n\n{UNTRUSTED_DATA_RULE}"), Message("user", user)],
    )
    answer = completion.text.strip() or "(the model gave no answer)"
    if len(answer) > MAX_ANSWER_CHARS:
        answer = answer[:MAX_ANSWER_CHARS] + "\n\n[answer truncated]"
    return defang(answer)


def _no_model() -> Turnout:
    return Turnout("Answering needs a model, and none is configured for chat in this deployment.")


async def handle_ask(deps: ChatDeps, turn: Turn) -> Turnout:
    """Answer a question from the PR, its thread and (in a review thread) the file."""
    question = turn.command.argument.strip()
    if not question:
        mention = deps.config.mention_name
        return Turnout(f"What is the question? `@{mention} ask <question>`.")
    if deps.llm is None:
        return _no_model()
    builder = (
        PromptBuilder()
        .text("The pull request:")
        .untrusted("pr_title", turn.pr.title)
        .untrusted("pr_body", turn.pr.body[:4000])
        .untrusted("diff", await gather_diff(deps, turn))
        .text("The conversation so far (most recent last):")
        .untrusted("thread", await _thread(deps, turn))
    )
    if turn.thread is not None:
        path, line = turn.thread
        window = await _file_window(deps, turn, path, line)
        builder = builder.text(f"The question was asked on line {line} of {path}:").untrusted(
            "file", window
        )
    prompt = (
        builder.text(f"The question, asked by {turn.author}:")
        .untrusted("question", question)
        .text("Answer the question.")
        .build()
    )
    answer = await _complete(deps.llm, _ASK_SYSTEM, prompt.text)
    return Turnout(answer)


def _finding_in_thread(comments: list[Comment], turn: Turn, bot_login: str) -> Comment | None:
    """The bot's first comment at this thread's path and line: the finding being discussed."""
    for comment in sorted(comments, key=lambda c: c.id):
        if (
            comment.author_login.lower() == bot_login.lower()
            and (comment.path, comment.line) == turn.thread
            and comment.id != turn.comment.id
        ):
            return comment
    return None


async def handle_explain(deps: ChatDeps, turn: Turn) -> Turnout:
    """The reasoning and evidence behind the bot's finding in this review thread."""
    mention = deps.config.mention_name
    if turn.thread is None:
        return Turnout(
            f"`explain` works in a finding's thread: reply to one of my inline comments with "
            f"`@{mention} explain`."
        )
    path, line = turn.thread
    comments = await deps.host.list_review_comments(turn.repo, turn.pr.number)
    finding = _finding_in_thread(comments, turn, deps.config.bot_login)
    # The pipeline's record of what it posted here: severity, message and the quoted evidence.
    recorded = [
        f
        for f in ReviewHistory(deps.store).posted_findings(turn.repo, turn.pr.number)
        if (f.path, f.line) == (path, line)
    ]
    if finding is None and not recorded:
        return Turnout("I found no comment of mine in this thread, so there is nothing to explain.")
    if deps.llm is None:
        return _no_model()
    window = await _file_window(deps, turn, path, line)
    builder = PromptBuilder().text(f"The finding, posted on line {line} of {path}:")
    if finding is not None:
        builder = builder.untrusted("finding", finding.body)
    for item in recorded[:3]:
        builder = (
            builder.text(f"Recorded finding ({item.severity}) at {item.path}:{item.line}:")
            .untrusted("finding_message", item.message)
            .text("The evidence it cited:")
            .untrusted("finding_evidence", item.evidence)
        )
    prompt = (
        builder.text("The file at the pull request's head, around that line:")
        .untrusted("file", window)
        .text("The user's request, if any detail was given:")
        .untrusted("request", turn.command.argument or "(none)")
        .text("Explain the reasoning and evidence behind the finding.")
        .build()
    )
    answer = await _complete(deps.llm, _EXPLAIN_SYSTEM, prompt.text)
    about = finding.body if finding is not None else recorded[0].message
    # The recorded message is the model's raw text; the thread's may be anyone's quote of it.
    return Turnout(f"About my comment:\n{defang(quote(about, limit=200))}\n\n{answer}")

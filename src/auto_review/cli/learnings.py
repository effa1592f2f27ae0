"""``auto-review learnings list|forget``: the notes maintainers asked the bot to keep in mind.

Every learning belongs to one repository (``memory.LearningsStore``); ``forget`` needs the
repository too, so an id from one repository can never remove another's note.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table
from rich.text import Text

from auto_review.cli._common import JSON_OPTION, load, out_console, parse_repo, print_json
from auto_review.cli._state import open_state_store
from auto_review.errors import ConfigError
from auto_review.memory import Learning, LearningsStore
from auto_review.review.output import printable

__all__ = ["app"]

app = typer.Typer(help="List and forget repository learnings.", no_args_is_help=True)
_SHOWN_CHARS = 80


def _view(item: Learning) -> dict[str, object]:
    return {
        "id": item.id,
        "repo": str(item.repo),
        "text": item.text,
        "author": item.author,
        "source": item.source,
        "pr": item.number,
        "created_at": datetime.fromtimestamp(item.created_at, UTC).isoformat(),
    }


@app.command("list")
def list_command(
    repo: str | None = typer.Option(None, "--repo", help="Only OWNER/REPO."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Learnings by repository, oldest first (the text is what a forge user wrote)."""
    ref = parse_repo(repo) if repo else None
    store = open_state_store(load())
    try:
        learnings = LearningsStore(store)
        repos = (ref,) if ref else learnings.repositories()
        items = [item for r in repos for item in learnings.list(r)]
    finally:
        store.close()
    if as_json:
        print_json([_view(i) for i in items])
        return
    table = Table("id", "repo", "PR", "author", "source", "text")
    for i in items:
        text = i.text.replace("\n", " ")
        shown = text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
        pr = f"#{i.number}" if i.number else ""
        # A learning is forge users' text, read back from a file the gateway writes: escaped,
        # and Text, not str, so that it is not read as rich markup.
        cells = (str(i.repo), pr, i.author, i.source, shown)
        table.add_row(str(i.id), *(Text(printable(c)) for c in cells))
    out_console.print(table)


@app.command("forget")
def forget(
    learning_id: int = typer.Argument(..., min=1, help="The id shown by `learnings list`."),
    repo: str = typer.Option(..., "--repo", help="OWNER/REPO the learning belongs to."),
) -> None:
    """Delete one learning of one repository."""
    ref = parse_repo(repo)
    store = open_state_store(load())
    try:
        removed = LearningsStore(store).forget(ref, learning_id)
    finally:
        store.close()
    if not removed:
        raise ConfigError(
            f"{ref} has no learning {learning_id}",
            (f"see the ids with `auto-review learnings list --repo {ref}`",),
        )
    out_console.print(f"forgot learning {learning_id} of {ref}")

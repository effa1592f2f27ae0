"""Context for the model beyond the diff: enclosing definitions, similar code, learnings.

- Enclosing definitions: for each changed file, the functions/types that contain its added
  lines (tree-sitter, parsed in the ``analyze`` sandbox via ``run_analysis``).
- Similar code (only when an embedding tier is configured): definitions from the changed files'
  directories are embedded (cached per repository and content hash in ``CodeVectors``) and each
  changed definition retrieves its nearest neighbours above a similarity threshold, from the
  SAME repository only, and only definitions the checkout under review holds at their lines
  (the cache also holds what other PRs' heads had).
- Learnings: the repository's notes (``LearningsStore``), untrusted text framed as data.

Any failure here degrades to less context with a note in the summary; it never fails a review.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from auto_review.errors import AutoReviewError
from auto_review.hosts import RepoRef
from auto_review.llm import LLMClient, Tier, embed
from auto_review.memory.learnings import LearningsStore
from auto_review.memory.vectors import CodeVector, CodeVectors, VectorIndex
from auto_review.review._isolation import AnalysisFailed, run_analysis
from auto_review.review.diff import FileDiff
from auto_review.review.symbols import language_for
from auto_review.review.workspace import Workspace
from auto_review.settings import MAX_ANALYSIS_SECS, Isolation

__all__ = ["ReviewContext", "build_context"]

_ANALYSIS_TIMEOUT = MAX_ANALYSIS_SECS
_MAX_NEIGHBOUR_FILES = 60
_TOP_K = 3
_MIN_SCORE = 0.8
_MAX_QUERIES = 100  # changed definitions looked up per review (bounds CPU on huge PRs)
_SNIPPET_CHARS = 800
_MAX_RANKED = 20  # neighbours per query checked against the checkout, best first
_MAX_HEAD_CHECKS = 200  # stored definitions outside this review's listing read per review
_VECTOR_TTL_SECS = 30 * 24 * 3600


@dataclass
class ReviewContext:
    per_file: dict[str, str] = field(default_factory=dict)
    learnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def for_files(self, paths: Sequence[str]) -> str:
        return "\n\n".join(self.per_file[p] for p in paths if self.per_file.get(p))


def _enclosing_text(path: str, defs: Sequence[dict[str, Any]]) -> str:
    rows = [
        f"- {d['kind']} `{d['name']}` (lines {d['start']}-{d['end']}): {d['header']}" for d in defs
    ]
    return f"{path} — changed lines are inside:\n" + "\n".join(rows) if rows else ""


async def _symbols(
    workspace: Workspace, files: Sequence[FileDiff], isolation: Isolation
) -> dict[str, Any]:
    changed = {
        f.path: sorted(f.added)
        for f in files
        if language_for(f.path) and f.added and f.path not in workspace.excluded
    }
    if not changed:
        return {}
    payload = {"root": str(workspace.root), "files": changed}
    return await asyncio.to_thread(
        run_analysis, "symbols", payload, timeout=_ANALYSIS_TIMEOUT, isolation=isolation
    )


def _same_file(path: str) -> Callable[[CodeVector], bool]:
    def same(item: CodeVector) -> bool:
        return item.path == path

    return same


class _AtHead:
    """Whether a stored definition is in the checkout under review, as stored.

    closes F70: the cache holds what every PR head the bot checked out had, so another
    (unmerged, even closed) PR's code would be offered as "elsewhere in this repository". A
    definition this review listed is current; any other must still be at its lines here.
    """

    def __init__(self, workspace: Workspace, listed: dict[tuple[str, str, int], CodeVector]):
        self._workspace = workspace
        self._listed = listed
        self._checks = _MAX_HEAD_CHECKS
        self._seen: dict[tuple[str, str, int, str], bool] = {}

    def __call__(self, item: CodeVector) -> bool:
        listed = self._listed.get((item.path, item.name, item.line_start))
        if listed is not None:
            return listed.content_hash == item.content_hash
        key = (item.path, item.name, item.line_start, item.content_hash)
        if key not in self._seen:
            self._checks -= 1
            lines = self._workspace.lines(item.path) if self._checks >= 0 else None
            span = "\n".join(lines[item.line_start - 1 : item.line_end]) if lines else ""
            self._seen[key] = bool(item.content) and item.content in span
        return self._seen[key]


async def _similar(
    *,
    llm: LLMClient,
    vectors: CodeVectors,
    repo: RepoRef,
    workspace: Workspace,
    files: Sequence[FileDiff],
    enclosing: dict[str, Any],
    isolation: Isolation,
) -> dict[str, str]:
    """Per changed file, the most similar definitions elsewhere in this repository."""
    model = llm.tier_config(Tier.EMBEDDING).model
    dirs = {str(PurePosixPath(f.path).parent) for f in files}
    listing = await asyncio.to_thread(
        run_analysis,
        "list_files",
        {"root": str(workspace.root), "dirs": sorted(dirs)},
        timeout=_ANALYSIS_TIMEOUT,
        isolation=isolation,
    )
    candidates = sorted({str(p) for p in listing.get("files", [])} | {f.path for f in files})
    candidates = [p for p in candidates if language_for(p)][:_MAX_NEIGHBOUR_FILES]
    defs = await asyncio.to_thread(
        run_analysis,
        "definitions",
        {"root": str(workspace.root), "files": candidates},
        timeout=_ANALYSIS_TIMEOUT,
        isolation=isolation,
    )
    items: list[CodeVector] = []
    for path, found in defs.items():
        for d in found:
            digest = hashlib.sha256(d["text"].encode()).hexdigest()[:32]
            items.append(CodeVector(path, d["name"], d["start"], d["end"], digest, d["text"], ()))
    cached = vectors.cached(repo, model)
    fresh = [
        it
        for it in items
        if (c := cached.get((it.path, it.name, it.line_start))) is None
        or c.content_hash != it.content_hash
    ]
    if fresh:
        result = await embed(llm, [it.content for it in fresh])
        embedded = [
            CodeVector(it.path, it.name, it.line_start, it.line_end, it.content_hash, it.content, v)
            for it, v in zip(fresh, result.vectors, strict=True)
        ]
        vectors.upsert(repo, model, embedded)
    vectors.touch(repo, [(it.path, it.name, it.line_start) for it in items])
    vectors.gc(repo, older_than_secs=_VECTOR_TTL_SECS)
    stored = vectors.cached(repo, model)
    index = VectorIndex(stored.values())  # one load; every query scores in memory
    at_head = _AtHead(workspace, {(it.path, it.name, it.line_start): it for it in items})
    out: dict[str, str] = {}
    budget = _MAX_QUERIES
    for f in files:
        queries = [
            stored[(f.path, d["name"], d["start"])]
            for d in enclosing.get(f.path, [])
            if (f.path, d["name"], d["start"]) in stored
        ][: max(budget, 0)]
        budget -= len(queries)
        hits: dict[tuple[str, int], tuple[float, CodeVector]] = {}
        for q in queries:
            ranked = index.nearest(
                q.vector, k=_MAX_RANKED, min_score=_MIN_SCORE, exclude=_same_file(f.path)
            )
            for score, hit in [sh for sh in ranked if at_head(sh[1])][:_TOP_K]:
                hits.setdefault((hit.path, hit.line_start), (score, hit))
        best = sorted(hits.values(), key=lambda sh: -sh[0])[:_TOP_K]
        if best:
            out[f.path] = "Similar code elsewhere in this repository:\n" + "\n".join(
                f"- {h.path}:{h.line_start}-{h.line_end} `{h.name}` (similarity {s:.2f}):\n"
                + h.content[:_SNIPPET_CHARS]
                for s, h in best
            )
    return out


async def build_context(
    *,
    repo: RepoRef,
    workspace: Workspace | None,
    files: Sequence[FileDiff],
    llm: LLMClient,
    learnings: LearningsStore | None,
    vectors: CodeVectors | None,
    isolation: Isolation = Isolation.FULL,
) -> ReviewContext:
    """Collect what the model should know besides the diff; degrade, never fail."""
    ctx = ReviewContext()
    if learnings is not None:
        ctx.learnings = [item.text for item in learnings.list(repo)]
    if workspace is None:
        return ctx
    try:
        enclosing = await _symbols(workspace, files, isolation)
    except AnalysisFailed as exc:
        ctx.notes.append(f"code structure was not analysed ({exc.message})")
        enclosing = {}
    by_path = {f.path: f for f in files}
    for path, defs in enclosing.items():
        # A definition whose header line the diff already shows needs no restating.
        shown = by_path[path].commentable if path in by_path else frozenset()
        hidden = [d for d in defs if d["start"] not in shown]
        ctx.per_file[path] = _enclosing_text(path, hidden)
    if vectors is not None and llm.has_tier(Tier.EMBEDDING):
        try:
            similar = await _similar(
                llm=llm,
                vectors=vectors,
                repo=repo,
                workspace=workspace,
                files=files,
                enclosing=enclosing,
                isolation=isolation,
            )
        except AutoReviewError as exc:
            ctx.notes.append(f"similar-code retrieval was skipped ({type(exc).__name__})")
            similar = {}
        for path, text in similar.items():
            ctx.per_file[path] = "\n\n".join(t for t in (ctx.per_file.get(path), text) if t)
    return ctx

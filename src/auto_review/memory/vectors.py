"""Repository-scoped embeddings of code definitions, for similar-code retrieval.

Invariants: every read and write names one ``owner/repo`` (the reference kept one global pool,
so a snippet of one repository could be retrieved into another's prompt); rows are keyed by
``(path, name, line_start)`` with the content hash and model, so a changed definition or a new
embedding model is re-embedded rather than reused; ``gc`` removes rows not seen recently and
caps each repository at ``MAX_VECTORS_PER_REPO``.
"""

from __future__ import annotations

import math
import operator
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from auto_review.hosts import RepoRef
from auto_review.store import Store

__all__ = [
    "MAX_VECTORS_PER_REPO",
    "CodeVector",
    "CodeVectors",
    "VectorIndex",
    "cosine",
    "nearest_of",
]

MAX_VECTORS_PER_REPO = 20_000


@dataclass(frozen=True)
class CodeVector:
    path: str
    name: str
    line_start: int
    line_end: int
    content_hash: str
    content: str  # untrusted: repository code
    vector: tuple[float, ...]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b) or not a:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _unit(vector: Sequence[float]) -> tuple[float, ...]:
    norm = math.sqrt(sum(x * x for x in vector))
    return tuple(x / norm for x in vector) if norm else tuple(vector)


class VectorIndex:
    """Items with unit-length vectors, so each query costs one dot product per item."""

    def __init__(self, items: Iterable[CodeVector]) -> None:
        self._items = [(item, _unit(item.vector)) for item in items]

    def nearest(
        self,
        query: Sequence[float],
        *,
        k: int,
        min_score: float,
        exclude: Callable[[CodeVector], bool] = lambda v: False,
    ) -> list[tuple[float, CodeVector]]:
        """The ``k`` items closest to ``query`` (cosine >= ``min_score``), best first."""
        unit = _unit(query)
        scored = []
        for item, vector in self._items:
            if len(vector) != len(unit) or exclude(item):
                continue
            score = sum(map(operator.mul, unit, vector))
            if score >= min_score:
                scored.append((score, item))
        scored.sort(key=lambda pair: (-pair[0], pair[1].path, pair[1].line_start))
        return scored[:k]


def nearest_of(
    items: Iterable[CodeVector],
    query: Sequence[float],
    *,
    k: int,
    min_score: float,
    exclude: Callable[[CodeVector], bool] = lambda v: False,
) -> list[tuple[float, CodeVector]]:
    """The ``k`` items closest to ``query`` (cosine >= ``min_score``), best first."""
    return VectorIndex(items).nearest(query, k=k, min_score=min_score, exclude=exclude)


def _blob(vector: Sequence[float]) -> bytes:
    return array("f", vector).tobytes()


def _unblob(data: bytes) -> tuple[float, ...]:
    values = array("f")
    values.frombytes(data)
    return tuple(values)


class CodeVectors:
    """The ``code_vectors`` table, always addressed by repository."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def cached(self, repo: RepoRef, model: str) -> dict[tuple[str, str, int], CodeVector]:
        """Every stored vector of ``repo`` made by ``model``, by key."""
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT path, name, line_start, line_end, content_hash, content, embedding"
                " FROM code_vectors WHERE repo = ? AND model = ?",
                (repo.full_name, model),
            ).fetchall()
        found = {}
        for r in rows:
            item = CodeVector(
                str(r[0]),
                str(r[1]),
                int(r[2]),
                int(r[3]),
                str(r[4]),
                str(r[5]),
                _unblob(bytes(r[6])),
            )
            found[(item.path, item.name, item.line_start)] = item
        return found

    def upsert(self, repo: RepoRef, model: str, items: Iterable[CodeVector]) -> None:
        now = self._clock()
        with self._store.write() as conn:
            for it in items:
                conn.execute(
                    "INSERT INTO code_vectors (repo, path, name, line_start, line_end,"
                    " content_hash, content, model, embedding, last_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (repo, path, name, line_start) DO UPDATE SET"
                    " line_end = excluded.line_end, content_hash = excluded.content_hash,"
                    " content = excluded.content, model = excluded.model,"
                    " embedding = excluded.embedding, last_seen = excluded.last_seen",
                    (
                        repo.full_name,
                        it.path,
                        it.name,
                        it.line_start,
                        it.line_end,
                        it.content_hash,
                        it.content,
                        model,
                        _blob(it.vector),
                        now,
                    ),
                )

    def touch(self, repo: RepoRef, keys: Iterable[tuple[str, str, int]]) -> None:
        now = self._clock()
        with self._store.write() as conn:
            conn.executemany(
                "UPDATE code_vectors SET last_seen = ? WHERE repo = ? AND path = ? AND name = ?"
                " AND line_start = ?",
                [(now, repo.full_name, p, n, s) for p, n, s in keys],
            )

    def nearest(
        self,
        repo: RepoRef,
        model: str,
        query: Sequence[float],
        *,
        k: int,
        min_score: float,
        exclude: Callable[[CodeVector], bool] = lambda v: False,
    ) -> list[tuple[float, CodeVector]]:
        """Up to ``k`` of ``repo``'s vectors closest to ``query`` scoring at least ``min_score``."""
        return nearest_of(
            self.cached(repo, model).values(), query, k=k, min_score=min_score, exclude=exclude
        )

    def gc(self, repo: RepoRef, *, older_than_secs: float) -> int:
        """Delete ``repo``'s rows unseen for ``older_than_secs`` and any over the cap."""
        cutoff = self._clock() - older_than_secs
        with self._store.write() as conn:
            removed = conn.execute(
                "DELETE FROM code_vectors WHERE repo = ? AND last_seen < ?",
                (repo.full_name, cutoff),
            ).rowcount
            removed += conn.execute(
                "DELETE FROM code_vectors WHERE repo = ? AND rowid NOT IN (SELECT rowid FROM"
                " code_vectors WHERE repo = ? ORDER BY last_seen DESC LIMIT ?)",
                (repo.full_name, repo.full_name, MAX_VECTORS_PER_REPO),
            ).rowcount
        return int(removed)

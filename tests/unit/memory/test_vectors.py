from __future__ import annotations

from auto_review.hosts import RepoRef
from auto_review.memory.vectors import CodeVector, CodeVectors
from auto_review.store import MEMORY, Store

A, B = RepoRef("o", "a"), RepoRef("o", "b")


def _v(path: str, vec: tuple[float, ...]) -> CodeVector:
    return CodeVector(path, "f", 1, 3, "h", "def f(): ...", vec)


def test_nearest_never_returns_another_repositorys_code() -> None:
    now = [100.0]
    vectors = CodeVectors(Store.open(MEMORY), clock=lambda: now[0])
    vectors.upsert(A, "m", [_v("a.py", (1.0, 0.0))])
    vectors.upsert(B, "m", [_v("secret.py", (1.0, 0.0))])
    hits = vectors.nearest(A, "m", (1.0, 0.0), k=5, min_score=0.5)
    assert [h.path for _, h in hits] == ["a.py"]
    assert vectors.nearest(A, "other-model", (1.0, 0.0), k=5, min_score=0.5) == []
    assert vectors.nearest(A, "m", (0.0, 1.0), k=5, min_score=0.5) == []


def test_gc_removes_rows_not_seen_recently_only_in_that_repo() -> None:
    now = [100.0]
    vectors = CodeVectors(Store.open(MEMORY), clock=lambda: now[0])
    vectors.upsert(A, "m", [_v("old.py", (1.0,)), _v("new.py", (1.0,))])
    vectors.upsert(B, "m", [_v("b.py", (1.0,))])
    now[0] = 200.0
    vectors.touch(A, [("new.py", "f", 1)])
    assert vectors.gc(A, older_than_secs=50) == 1
    assert sorted(k[0] for k in vectors.cached(A, "m")) == ["new.py"]
    assert list(vectors.cached(B, "m")) == [("b.py", "f", 1)]

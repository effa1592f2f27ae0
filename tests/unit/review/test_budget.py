from __future__ import annotations

from auto_review.review.budget import RenderedFile, plan_calls


def _tokens(text: str) -> int:
    return len(text) // 4


def _file(path: str, size: int, compact: int | None = None) -> RenderedFile:
    return RenderedFile(path, "x" * size, "y" * (compact if compact is not None else size))


def test_plan_calls_sends_everything_in_one_call_when_it_fits() -> None:
    plan = plan_calls(
        [_file("a.py", 400), _file("b.py", 400)],
        context_tokens=4000,
        output_tokens=1000,
        fixed_tokens=500,
        max_calls=4,
        estimate=_tokens,
    )
    assert len(plan.groups) == 1
    assert sorted(plan.groups[0].paths) == ["a.py", "b.py"]
    assert plan.unreviewed == ()


def test_plan_calls_splits_into_groups_instead_of_truncating() -> None:
    files = [_file(f"src/f{i}.py", 4000) for i in range(5)]
    plan = plan_calls(
        files,
        context_tokens=4000,
        output_tokens=1000,
        fixed_tokens=500,
        max_calls=6,
        estimate=_tokens,
    )
    assert len(plan.groups) == 3
    assert sorted(p for g in plan.groups for p in g.paths) == sorted(f.path for f in files)
    assert all(g.tokens <= plan.tokens_per_call for g in plan.groups)


def test_plan_calls_names_files_left_over_the_call_limit() -> None:
    files = [_file(f"src/f{i}.py", 8000) for i in range(4)]
    plan = plan_calls(
        files,
        context_tokens=4000,
        output_tokens=1000,
        fixed_tokens=500,
        max_calls=2,
        estimate=_tokens,
    )
    assert len(plan.groups) == 2
    assert [p for p, _ in plan.unreviewed] == ["src/f2.py", "src/f3.py"]
    assert "2 model calls" in plan.unreviewed[0][1]


def test_plan_calls_uses_compact_rendering_before_giving_up_on_a_big_file() -> None:
    plan = plan_calls(
        [_file("big.py", 20000, compact=4000), _file("huge.py", 90000)],
        context_tokens=4000,
        output_tokens=1000,
        fixed_tokens=500,
        max_calls=4,
        estimate=_tokens,
    )
    assert plan.groups[0].parts == ["y" * 4000]
    assert plan.unreviewed[0][0] == "huge.py"
    assert "too large" in plan.unreviewed[0][1]


def test_plan_calls_packs_code_before_docs() -> None:
    plan = plan_calls(
        [_file("README.md", 8000), _file("z.go", 8000)],
        context_tokens=4000,
        output_tokens=1000,
        fixed_tokens=500,
        max_calls=1,
        estimate=_tokens,
    )
    assert plan.groups[0].paths == ["z.go"]
    assert plan.unreviewed[0][0] == "README.md"

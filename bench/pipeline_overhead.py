"""Review pipeline overhead: the pipeline's own time by stage, and the prompt tokens it sends.

Usage: ``.venv/bin/python bench/pipeline_overhead.py [--files 40] [--lines 60] [--runs 3]``

Generates a PR of ``files`` files of ``lines`` lines (default 40 x 60, about 2,000 changed
lines) in six languages (Python, JavaScript, TypeScript, Go, Rust, Java) on the fake forge
(real git over HTTP on loopback) and reviews it with the real ``ReviewPipeline``: hermetic
clone in the sandbox, base-branch config, diff parsing, triage, tree-sitter context in the
sandbox, similar-code retrieval, budget, generation, verification, guard, posting. The model
is an in-process OpenAI-compatible responder that answers instantly (one finding per call
citing a real added line, keep-all verdicts, hashed embeddings), so every measured second is
the pipeline's own.

Baseline, measured in the same run on the same PR: the naive reviewer, which fetches the raw
unified diff and sends it in one prompt. Prints per-stage times, totals, prompt tokens and the
pipeline/baseline ratios. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.forge import FakeForge

from auto_review.hosts import HeadSha, RepoRef
from auto_review.hosts.forgejo import ForgejoHost
from auto_review.llm import LLMClient, estimate_tokens
from auto_review.logs import configure_logging
from auto_review.review import (
    PipelineOptions,
    ReviewPipeline,
    ReviewRequest,
    Trigger,
    _stages,
    context,
    pipeline,
)
from auto_review.settings import LLMConfig, LLMTierConfig
from auto_review.store import MEMORY, Store

LANGS = {
    "py": ("def {n}(items, limit):\n", "    total = 0\n", "    for i in items[:limit]:\n",
           "        total += i * {k}\n", "    return total\n", "\n"),
    "js": ("function {n}(items, limit) {{\n", "  let total = 0;\n",
           "  for (const i of items.slice(0, limit)) {{\n", "    total += i * {k};\n", "  }}\n",
           "  return total;\n}}\n"),
    "ts": ("export function {n}(items: number[], limit: number): number {{\n",
           "  let total = 0;\n", "  for (const i of items.slice(0, limit)) {{\n",
           "    total += i * {k};\n", "  }}\n", "  return total;\n}}\n"),
    "go": ("func {n}(items []int, limit int) int {{\n", "\ttotal := 0\n",
           "\tfor _, i := range items[:limit] {{\n", "\t\ttotal += i * {k}\n", "\t}}\n",
           "\treturn total\n}}\n"),
    "rs": ("pub fn {n}(items: &[i64], limit: usize) -> i64 {{\n", "    let mut total = 0;\n",
           "    for i in &items[..limit] {{\n", "        total += i * {k};\n", "    }}\n",
           "    total\n}}\n"),
    "java": ("  static int {n}(int[] items, int limit) {{\n", "    int total = 0;\n",
             "    for (int j = 0; j < limit; j++) {{\n", "      total += items[j] * {k};\n",
             "    }}\n", "    return total;\n  }}\n"),
}  # fmt: skip


def _source(ext: str, index: int, lines: int, salt: int) -> str:
    parts = LANGS[ext]
    body: list[str] = []
    k = 0
    while sum(p.count("\n") for p in body) < lines:
        body.extend(p.format(n=f"f{index}_{k}", k=k + salt) for p in parts)
        k += 1
    text = "".join(body)
    # Rename the locals per side, so nearly every line of every function changes.
    for word in ("total", "items", "limit"):
        text = text.replace(word, f"{word}{salt}")
    if ext == "java":
        text = f"class C{index} {{\n{text}}}\n"
    if ext == "go":
        text = "package gen\n\n" + text
    return text


def generate_pr(forge: FakeForge, files: int, lines: int) -> int:
    exts = list(LANGS)
    base: dict[str, str] = {}
    head: dict[str, str] = {}
    for i in range(files):
        ext = exts[i % len(exts)]
        path = f"pkg{i % 5}/mod{i:02d}.{ext}"
        base[path] = _source(ext, i, lines, 1)
        head[path] = _source(ext, i, lines, 2)  # every body line changes
    forge.create_repo("bench/app", {**base, ".auto_review.yaml": "guidelines: be brief\n"})
    forge.push("bench/app", "feature", head)
    return forge.open_pull("bench/app", head="feature", title="Bench", body="bench").number


_ADDED = re.compile(r"^(\d+) \+(.+)$", re.M)
_FILE = re.compile(r"^## File: '([^']+)'", re.M)


def _model_answer(body: dict[str, Any]) -> dict[str, Any]:
    """An instant model: a finding on the first added line of each call; keep-all verdicts."""
    text = "\n".join(str(m["content"]) for m in body["messages"])
    name = body.get("response_format", {}).get("json_schema", {}).get("name", "")
    if name == "verification":
        n = text.count("<<<UNTRUSTED finding_")
        content: Any = {"verdicts": [{"index": i, "keep": True, "reason": "ok"} for i in range(n)]}
    else:
        findings = []
        file_match, line_match = _FILE.search(text), _ADDED.search(text)
        if file_match and line_match:
            findings.append({
                "path": file_match.group(1), "line_start": int(line_match.group(1)),
                "line_end": int(line_match.group(1)), "severity": "warning", "category": "bug",
                "message": "check this", "evidence": line_match.group(2).strip(),
                "suggestion": None,
            })  # fmt: skip
        content = {"summary": "Bench.", "walkthrough": "", "findings": findings}
    return {
        "id": "x", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(content)}}],
        "usage": {"prompt_tokens": estimate_tokens(text), "completion_tokens": 50},
    }  # fmt: skip


def _embedding(text: str, dim: int = 32) -> list[float]:
    acc = [0.0] * dim
    for word in text.split():
        d = hashlib.sha256(word.encode()).digest()
        acc[d[0] % dim] += 1.0
    norm = sum(x * x for x in acc) ** 0.5 or 1.0
    return [x / norm for x in acc]


class ModelRecorder:
    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.calls: dict[str, int] = defaultdict(int)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/embeddings"):
            self.calls["embedding"] += 1
            data = [{"index": i, "embedding": _embedding(t)} for i, t in enumerate(body["input"])]
            return httpx.Response(200, json={"data": data, "usage": {"prompt_tokens": 1}})
        self.calls[body["model"]] += 1
        self.prompt_tokens += sum(estimate_tokens(str(m["content"])) for m in body["messages"])
        return httpx.Response(200, json=_model_answer(body))


class StageClock:
    """Wraps stage functions where the pipeline looks them up, summing their wall time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, module: Any, attr: str, stage: str) -> None:
        original = getattr(module, attr)

        if asyncio.iscoroutinefunction(original):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self.seconds[stage] += time.perf_counter() - start

            setattr(module, attr, timed_async)
        else:

            def timed(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.seconds[stage] += time.perf_counter() - start

            setattr(module, attr, timed)


def _config(base: str) -> LLMConfig:
    return LLMConfig(
        reasoning=LLMTierConfig("reasoning", base, None, "bench-reasoning"),
        cheap=LLMTierConfig("cheap", base, None, "bench-cheap"),
        embedding=LLMTierConfig("embedding", base, None, "bench-embedding"),
        context_tokens=32768, max_output_tokens=4096, timeout_secs=30, price_table_path=None,
    )  # fmt: skip


async def run_pipeline(forge: FakeForge, number: int, tmp: Path) -> tuple[float, ModelRecorder]:
    model = ModelRecorder()
    async with (
        httpx.AsyncClient(trust_env=False) as http,
        httpx.AsyncClient(transport=httpx.MockTransport(model.handler)) as llm_http,
    ):
        host = ForgejoHost(http, base_url=forge.url, token=forge.bot_token)
        llm = LLMClient(_config("http://model.invalid"), llm_http)
        runner = ReviewPipeline(
            PipelineOptions(workspace_parent=tmp, max_output_tokens=4096), host, llm,
            Store.open(MEMORY),
        )  # fmt: skip
        pr = await host.get_pull_request(RepoRef("bench", "app"), number)
        request = ReviewRequest(RepoRef("bench", "app"), number, HeadSha(pr.head_sha),
                                Trigger.CLI, force=True)  # fmt: skip
        start = time.perf_counter()
        outcome = await runner.run(request)
        elapsed = time.perf_counter() - start
        assert outcome.outcome.value == "posted", outcome
    return elapsed, model


async def run_baseline(forge: FakeForge, number: int) -> tuple[float, int]:
    model = ModelRecorder()
    async with (
        httpx.AsyncClient(trust_env=False) as http,
        httpx.AsyncClient(transport=httpx.MockTransport(model.handler)) as llm_http,
    ):
        host = ForgejoHost(http, base_url=forge.url, token=forge.bot_token)
        llm = LLMClient(_config("http://model.invalid"), llm_http)
        start = time.perf_counter()
        diff = await host.get_pull_diff(RepoRef("bench", "app"), number)
        prompt = "Review this pull request and report bugs as JSON.\n```diff\n" + diff + "\n```"
        from auto_review.llm import Message, Tier  # noqa: PLC0415

        await llm.chat(Tier.REASONING, [Message("user", prompt)])
        elapsed = time.perf_counter() - start
    return elapsed, model.prompt_tokens


def _instrument(clock: StageClock) -> None:
    clock.wrap(pipeline, "load_repo_config", "config (base branch)")
    clock.wrap(pipeline, "parse_diff", "diff parse")
    clock.wrap(pipeline, "triage", "triage")
    clock.wrap(_stages, "build_context", "context (symbols, similar code)")
    clock.wrap(context, "_symbols", "  of which: tree-sitter symbols")
    clock.wrap(context, "_similar", "  of which: similar-code retrieval")
    clock.wrap(_stages, "render_file", "render hunks")
    clock.wrap(_stages, "plan_calls", "budget")
    clock.wrap(_stages, "generate", "generation (model instant)")
    clock.wrap(_stages, "check_findings", "deterministic verify")
    clock.wrap(_stages, "_model_verify", "model verify (model instant)")
    clock.wrap(_stages, "guard_findings", "guard")
    clock.wrap(pipeline, "post_review", "publish")


def _wrap_workspace(runner_cls: Any, clock: StageClock) -> None:
    original: Callable[..., Awaitable[Any]] = runner_cls._workspace

    async def timed(self: Any, pr: Any, notes: list[str], since: str | None) -> Any:
        start = time.perf_counter()
        try:
            return await original(self, pr, notes, since)
        finally:
            clock.seconds["workspace (sandboxed clone and diff)"] += time.perf_counter() - start

    runner_cls._workspace = timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--lines", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    configure_logging(level="error", fmt="json", stream=sys.stderr)
    clock = StageClock()
    _instrument(clock)
    _wrap_workspace(ReviewPipeline, clock)
    with (
        tempfile.TemporaryDirectory(prefix="ar-bench-") as tmp,
        FakeForge(Path(tmp) / "forge") as forge,
    ):
        number = generate_pr(forge, args.files, args.lines)
        diff = asyncio.run(_raw_diff(forge, number))
        changed = sum(
            1 for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")
        )
        totals, base_totals, model = [], [], None
        for _ in range(args.runs):
            clock.seconds.clear()
            elapsed, model = asyncio.run(run_pipeline(forge, number, Path(tmp)))
            totals.append(elapsed)
            base_elapsed, base_tokens = asyncio.run(run_baseline(forge, number))
            base_totals.append(base_elapsed)
        assert model is not None
        print(f"PR: {args.files} files, {changed} added lines, 6 languages; {args.runs} runs\n")
        print("pipeline stages (last run, seconds):")
        for stage, seconds in clock.seconds.items():
            print(f"  {stage:40s} {seconds:8.3f}")
        pipe, base = statistics.median(totals), statistics.median(base_totals)
        print(f"\npipeline total (median)      {pipe:8.3f} s")
        print(f"naive baseline total (median) {base:8.3f} s   ratio {pipe / base:6.1f}x")
        print(f"\nmodel calls: {dict(model.calls)}")
        print(f"prompt tokens sent, pipeline: {model.prompt_tokens}")
        ratio = model.prompt_tokens / base_tokens
        print(f"prompt tokens sent, baseline: {base_tokens}   ratio {ratio:.2f}x")
    return 0


async def _raw_diff(forge: FakeForge, number: int) -> str:
    async with httpx.AsyncClient(trust_env=False) as http:
        host = ForgejoHost(http, base_url=forge.url, token=forge.bot_token)
        return await host.get_pull_diff(RepoRef("bench", "app"), number)


if __name__ == "__main__":
    sys.exit(main())

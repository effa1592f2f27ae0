"""Scripted model: a real OpenAI-compatible HTTP server on 127.0.0.1 for tests.

It serves ``GET /v1/models``, ``POST /v1/chat/completions`` (``response_format`` of type
``json_schema`` included: a strict schema that breaks OpenAI's rules is refused with 400, as the
provider would) and ``POST /v1/embeddings``. Each answer comes from the test's script: a queue of
steps per endpoint, or a function of the request once the queue is empty. Every request is
recorded (method, path, headers without Authorization, parsed JSON body) for assertions.

Fixtures (registered in tests/conftest.py):

- ``scripted_model``: the ``ScriptedModel`` control object, reset for each test. A test that
  leaves a request unanswered by its script fails at teardown (set ``allow_unscripted``).
- ``scripted_llm_config``: an ``LLMConfig`` whose three tiers point at it (models
  ``scripted-reasoning``, ``scripted-cheap``, ``scripted-embedding``, key ``SCRIPTED_API_KEY``,
  5 s timeout).
- ``scripted_model_server``: the session-wide server behind them.

Example::

    @pytest.mark.anyio
    async def test_review_parses(scripted_model, scripted_llm_config):
        scripted_model.script(fenced({"findings": []}), rate_limited(retry_after=2))
        async with scripted_llm_client(scripted_llm_config) as (client, sleeps):
            ...
        assert scripted_model.requests[0].body["temperature"] == 0

Steps: ``reply`` (text, or an object sent as JSON; schema-violating objects are just objects),
``fenced`` (JSON in a Markdown fence), ``truncated`` (JSON cut in half), ``invalid_json``,
``rate_limited`` (429 + Retry-After), ``server_error`` (500 or any status), ``hang`` (answers
only after the client gave up), ``vectors`` (explicit embeddings), ``Stream`` (a raw 200 body
flooded or dripped chunk by chunk, counting what it sent). Embeddings default to
deterministic hashed bag-of-words vectors: texts sharing words are close in cosine distance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from auto_review.llm import LLMClient
from auto_review.settings import LLMConfig, LLMTierConfig
from tests.fakes.llm_script import (
    DEFAULT_MODELS,
    EMBEDDING_DIM,
    MAX_HANG_SECS,
    SCRIPTED_API_KEY,
    Hang,
    RecordedRequest,
    Reply,
    ScriptedModel,
    Status,
    Step,
    Stream,
    Vectors,
    fenced,
    hang,
    hashed_embedding,
    invalid_json,
    rate_limited,
    reply,
    server_error,
    truncated,
    vectors,
)
from tests.fakes.openai_strict import strict_schema_problems

__all__ = [
    "DEFAULT_MODELS",
    "EMBEDDING_DIM",
    "SCRIPTED_API_KEY",
    "Hang",
    "RecordedRequest",
    "Reply",
    "ScriptedModel",
    "ScriptedModelServer",
    "SleepRecorder",
    "Status",
    "Step",
    "Stream",
    "Vectors",
    "fenced",
    "hang",
    "hashed_embedding",
    "invalid_json",
    "make_llm_config",
    "rate_limited",
    "reply",
    "scripted_llm_client",
    "scripted_llm_config",
    "scripted_model",
    "scripted_model_server",
    "server_error",
    "truncated",
    "vectors",
]


# -- the HTTP app ---------------------------------------------------------------------------------


def _count(text: str) -> int:
    return max(1, len(text) // 4)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    kind = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid"
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _stream_body(step: Stream, request: Request) -> AsyncIterator[bytes]:
    if step.prefix:
        yield step.prefix
    for _ in range(step.count):
        if step.delay_secs:
            await asyncio.sleep(step.delay_secs)
        # Writing to a closed connection may not raise: stop counting once the client left.
        if await request.is_disconnected():
            return
        yield step.chunk
        step._count_sent()
    if step.suffix:
        yield step.suffix


def _build_app(model: ScriptedModel) -> Starlette:
    async def record(request: Request) -> tuple[RecordedRequest, Response | None]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        auth = request.headers.get("authorization")
        scheme, _, token = auth.partition(" ") if auth else (None, "", "")
        key_ok = (
            None
            if model.require_key is None
            else (scheme == "Bearer" and token == model.require_key)
        )
        recorded = RecordedRequest(
            request.method, request.url.path, headers, body, scheme or None, key_ok
        )
        model._record(recorded)
        if key_ok is False:
            return recorded, _error(401, "Incorrect API key provided")
        if raw and body is None:
            return recorded, _error(400, "request body is not JSON")
        return recorded, None

    async def answer_failure(
        step: Step, recorded: RecordedRequest, request: Request
    ) -> Response | None:
        if isinstance(step, Status):
            return _error(step.status, step.message, step.headers)
        if isinstance(step, Stream):
            return StreamingResponse(
                _stream_body(step, request), headers=step.headers, media_type="application/json"
            )
        if isinstance(step, Hang):
            released = model._release_event()
            # A worker thread waits, so the event loop keeps serving other requests.
            await asyncio.to_thread(released.wait, min(step.seconds, MAX_HANG_SECS))
            return _error(500, "hung request released")
        return None

    def unscripted(recorded: RecordedRequest) -> Response:
        model._mark_unscripted(recorded)
        return _error(500, "scripted model: the test's script has no step for this request")

    async def models(request: Request) -> Response:
        recorded, refused = await record(request)
        if refused is not None:
            return refused
        step = model._next_step("models", recorded)
        if step is not None:
            failed = await answer_failure(step, recorded, request)
            if failed is not None:
                return failed
        data = [{"id": m, "object": "model", "owned_by": "scripted"} for m in model.models]
        return JSONResponse({"object": "list", "data": data})

    async def chat(request: Request) -> Response:
        recorded, refused = await record(request)
        if refused is not None:
            return refused
        problem = _chat_request_problem(recorded.body)
        if problem is not None:
            return _error(400, problem)
        step = model._next_step("chat", recorded)
        if step is None:
            return unscripted(recorded)
        failed = await answer_failure(step, recorded, request)
        if failed is not None:
            return failed
        if not isinstance(step, Reply):
            return _error(500, f"scripted model: {type(step).__name__} is not a chat answer")
        prompt = step.prompt_tokens
        if prompt is None:
            prompt = sum(_count(str(m.get("content", ""))) for m in recorded.messages)
        completion = step.completion_tokens
        if completion is None:
            completion = _count(step.content)
        return JSONResponse(
            {
                "id": f"chatcmpl-scripted-{len(model.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": recorded.body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.content},
                        "finish_reason": step.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )

    async def embeddings(request: Request) -> Response:
        recorded, refused = await record(request)
        if refused is not None:
            return refused
        body = recorded.body
        if not isinstance(body, dict) or "model" not in body or "input" not in body:
            return _error(400, "embeddings need model and input")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        step = model._next_step("embeddings", recorded)
        if step is not None:
            failed = await answer_failure(step, recorded, request)
            if failed is not None:
                return failed
        if isinstance(step, Vectors):
            rows = step.vectors
            tokens = step.prompt_tokens
        else:
            rows = tuple(hashed_embedding(str(text)) for text in inputs)
            tokens = None
        if tokens is None:
            tokens = sum(_count(str(text)) for text in inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": list(row)}
            for i, row in enumerate(rows)
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )


def _chat_request_problem(body: Any) -> str | None:
    """What a real OpenAI-compatible server would refuse with 400, or ``None``."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        return "model and messages are required"
    for message in body["messages"]:
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
        ):
            return "each message needs a role of system, user or assistant"
        if not isinstance(message.get("content"), str):
            return "each message needs string content"
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object", "text"):
        return "response_format.type must be json_schema, json_object or text"
    if fmt["type"] != "json_schema":
        return None
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return "response_format.json_schema needs a name"
    if not isinstance(spec.get("schema"), dict):
        return "response_format.json_schema needs a schema"
    if spec.get("strict") is True:
        problems = strict_schema_problems(spec["schema"])
        if problems:
            return f"Invalid schema for response_format '{spec['name']}': {'; '.join(problems)}"
    return None


# -- server ---------------------------------------------------------------------------------------


class ScriptedModelServer:
    """The scripted model on a free 127.0.0.1 port, served by uvicorn in a daemon thread."""

    def __init__(self) -> None:
        self.model = ScriptedModel()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            _build_app(self.model),
            log_config=None,  # leave the process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_secs: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_secs
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the scripted model server did not start")
            time.sleep(0.01)

    def stop(self, timeout_secs: float = 10.0) -> None:
        self.model.release_hangs()
        self._server.should_exit = True
        self._thread.join(timeout_secs)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError("the scripted model server did not stop")

    def __enter__(self) -> ScriptedModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- client-side helpers --------------------------------------------------------------------------


class SleepRecorder:
    """An injectable ``sleep`` that records the delays asked for and does not wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


def make_llm_config(
    base_url: str,
    *,
    api_key: str | None = SCRIPTED_API_KEY,
    timeout_secs: float = 5.0,
    cheap: bool = True,
    embedding: bool = True,
    **overrides: Any,
) -> LLMConfig:
    """An ``LLMConfig`` whose tiers point at ``base_url`` (the scripted model)."""
    key = SecretStr(api_key) if api_key else None
    values: dict[str, Any] = {
        "reasoning": LLMTierConfig("reasoning", base_url, key, DEFAULT_MODELS[0]),
        "cheap": LLMTierConfig("cheap", base_url, key, DEFAULT_MODELS[1]) if cheap else None,
        "embedding": (
            LLMTierConfig("embedding", base_url, key, DEFAULT_MODELS[2]) if embedding else None
        ),
        "context_tokens": 32768,
        "max_output_tokens": 2048,
        "timeout_secs": timeout_secs,
        "price_table_path": None,
    }
    values.update(overrides)
    return LLMConfig(**values)


@contextlib.asynccontextmanager
async def scripted_llm_client(
    config: LLMConfig, **client_kwargs: Any
) -> AsyncIterator[tuple[LLMClient, SleepRecorder]]:
    """``(LLMClient, SleepRecorder)`` over a fresh loopback-only ``httpx.AsyncClient``."""
    sleeper = SleepRecorder()
    client_kwargs.setdefault("sleep", sleeper)
    client_kwargs.setdefault("jitter", lambda: 1.0)
    async with httpx.AsyncClient(trust_env=False) as http:
        yield LLMClient(config, http, **client_kwargs), sleeper


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scripted_model_server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def scripted_model(scripted_model_server: ScriptedModelServer) -> Iterator[ScriptedModel]:
    model = scripted_model_server.model
    model.reset()
    yield model
    leftover = model.unscripted
    allow = model.allow_unscripted
    model.reset()
    if leftover and not allow:
        paths = ", ".join(f"{r.method} {r.path}" for r in leftover)
        pytest.fail(f"the scripted model got requests its script did not answer: {paths}")


@pytest.fixture
def scripted_llm_config(
    scripted_model_server: ScriptedModelServer, scripted_model: ScriptedModel
) -> LLMConfig:
    return make_llm_config(scripted_model_server.base_url)

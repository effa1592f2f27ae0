"""The scripted model serves each scripted mode over real HTTP (checked with plain httpx)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.fakes.llm import (
    SCRIPTED_API_KEY,
    RecordedRequest,
    ScriptedModel,
    ScriptedModelServer,
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

STRICT_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.fixture
def http(scripted_model_server: ScriptedModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=scripted_model_server.base_url, trust_env=False) as client:
        yield client


def _chat(http: httpx.Client, **extra: Any) -> httpx.Response:
    body = {"model": "scripted-reasoning", "messages": [{"role": "user", "content": "hi"}]}
    return http.post("/v1/chat/completions", json={**body, **extra}, timeout=5)


def _content(response: httpx.Response) -> str:
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def test_scripted_model_lists_its_models(scripted_model: ScriptedModel, http: httpx.Client) -> None:
    scripted_model.models = ["a", "b:latest"]
    response = http.get("/v1/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["a", "b:latest"]


def test_scripted_model_answers_chat_in_script_order_with_usage(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(reply("first", prompt_tokens=11, completion_tokens=7), reply({"n": 2}))
    one = _chat(http)
    two = _chat(http)
    assert _content(one) == "first"
    assert one.json()["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    assert json.loads(_content(two)) == {"n": 2}
    assert two.json()["usage"]["prompt_tokens"] > 0
    assert two.json()["model"] == "scripted-reasoning"


def test_scripted_model_accepts_a_strict_json_schema_response_format(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(reply({"answer": "yes"}))
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": STRICT_SCHEMA, "strict": True},
    }
    response = _chat(http, response_format=fmt)
    assert response.status_code == 200
    assert scripted_model.chat_requests[0].response_format == fmt


def test_scripted_model_refuses_a_strict_schema_that_breaks_the_rules(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    loose = {"type": "object", "properties": {"answer": {"type": "string", "default": "x"}}}
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": loose, "strict": True},
    }
    response = _chat(http, response_format=fmt)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "additionalProperties must be false" in message
    assert "'default' is not supported" in message


def test_scripted_model_serves_fenced_truncated_and_invalid_json(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(fenced({"a": 1}), truncated({"a": "x" * 40}), invalid_json())
    fenced_text, truncated_response, invalid_text = (_chat(http) for _ in range(3))
    assert "```json\n" in _content(fenced_text)
    assert truncated_response.json()["choices"][0]["finish_reason"] == "length"
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        json.loads(_content(truncated_response))
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(_content(invalid_text))


def test_scripted_model_answers_429_with_retry_after(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(rate_limited(retry_after=7))
    response = _chat(http)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_scripted_model_answers_server_errors(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(server_error(), server_error(503, "overloaded"))
    assert _chat(http).status_code == 500
    second = _chat(http)
    assert second.status_code == 503
    assert second.json()["error"]["message"] == "overloaded"


def test_scripted_model_hangs_past_the_client_timeout(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(hang(), hang(), reply("after"))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):  # a release ends the hanging request, not later hang steps
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions", json=body, timeout=0.2)
        scripted_model.release_hangs()
    # Positive control: the server still answers the next request.
    assert _content(_chat(http)) == "after"


def test_scripted_model_uses_a_responder_function_once_the_queue_is_empty(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    seen: list[RecordedRequest] = []

    def answer(request: RecordedRequest) -> Any:
        seen.append(request)
        return reply(f"echo {request.messages[-1]['content']}")

    scripted_model.script(reply("queued"))
    scripted_model.respond_with(answer)
    assert _content(_chat(http)) == "queued"
    assert _content(_chat(http)) == "echo hi"
    assert len(seen) == 1


def test_scripted_model_records_requests_without_the_authorization_header(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(reply("ok"))
    _chat(http, temperature=0)
    (recorded,) = scripted_model.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.body["temperature"] == 0
    assert "authorization" not in recorded.headers
    assert recorded.headers["content-type"] == "application/json"


def test_scripted_model_refuses_a_wrong_bearer_key_and_accepts_the_right_one(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.require_key = SCRIPTED_API_KEY
    scripted_model.script(reply("ok"))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    wrong = http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer nope"})
    right = http.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {SCRIPTED_API_KEY}"}
    )
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert [r.key_ok for r in scripted_model.requests] == [False, True]
    assert all(r.auth_scheme == "Bearer" for r in scripted_model.requests)
    assert SCRIPTED_API_KEY not in repr(scripted_model.requests)


def test_scripted_model_embeds_deterministically_by_default(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    texts = ["parse the diff hunks", "parse the diff lines", "bake a cake"]
    body = {"model": "scripted-embedding", "input": texts}
    first = http.post("/v1/embeddings", json=body).json()
    second = http.post("/v1/embeddings", json=body).json()
    rows = [item["embedding"] for item in first["data"]]
    assert rows == [item["embedding"] for item in second["data"]]
    assert rows[0] == list(hashed_embedding(texts[0]))
    assert first["usage"]["prompt_tokens"] > 0

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert math.isclose(cosine(rows[0], rows[0]), 1.0)
    assert cosine(rows[0], rows[1]) > cosine(rows[0], rows[2])


def test_scripted_model_serves_scripted_embeddings_and_failures(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.script(server_error(502), vectors([1, 0], [0, 1]), endpoint="embeddings")
    body = {"model": "scripted-embedding", "input": ["a", "b"]}
    assert http.post("/v1/embeddings", json=body).status_code == 502
    data = http.post("/v1/embeddings", json=body).json()["data"]
    assert [d["embedding"] for d in data] == [[1.0, 0.0], [0.0, 1.0]]


def test_scripted_model_answers_500_and_records_a_request_its_script_lacks(
    scripted_model: ScriptedModel, http: httpx.Client
) -> None:
    scripted_model.allow_unscripted = True
    response = _chat(http)
    assert response.status_code == 500
    assert "no step" in response.json()["error"]["message"]
    assert len(scripted_model.unscripted) == 1


def test_scripted_model_server_starts_and_stops_on_a_free_loopback_port() -> None:
    with ScriptedModelServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.port > 0
        server.model.script(hang())
        with httpx.Client(trust_env=False) as client, pytest.raises(httpx.ReadTimeout):
            client.post(
                f"{server.base_url}/v1/chat/completions",
                json={"model": "m", "messages": []},
                timeout=0.2,
            )
    # stop() returned although a request was still hanging; the port is closed now.
    with httpx.Client(trust_env=False) as client, pytest.raises(httpx.ConnectError):
        client.get(f"{server.base_url}/v1/models", timeout=1)

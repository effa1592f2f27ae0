"""The script side of the scripted model: steps a test queues, requests the server recorded.

See ``tests.fakes.llm`` for the server, the fixtures and an example; import from there.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_MODELS",
    "EMBEDDING_DIM",
    "MAX_HANG_SECS",
    "SCRIPTED_API_KEY",
    "Hang",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ScriptedModel",
    "Status",
    "Step",
    "Stream",
    "Vectors",
    "fenced",
    "hang",
    "hashed_embedding",
    "invalid_json",
    "rate_limited",
    "reply",
    "server_error",
    "truncated",
    "vectors",
]

SCRIPTED_API_KEY = "sk-scripted-test-key-0123456789abcdef"
DEFAULT_MODELS = ("scripted-reasoning", "scripted-cheap", "scripted-embedding")
EMBEDDING_DIM = 32
MAX_HANG_SECS = 30.0

# -- steps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A 200 answer whose ``choices[0].message.content`` is ``content``."""

    content: str
    prompt_tokens: int | None = None  # default: a size-based count of the request
    completion_tokens: int | None = None  # default: a size-based count of ``content``
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Status:
    """A non-200 answer with an OpenAI-style error body."""

    status: int
    message: str = "scripted failure"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Answer nothing for ``seconds`` (or until the test ends), then a 500."""

    seconds: float = MAX_HANG_SECS


@dataclass(frozen=True)
class Vectors:
    """A 200 embeddings answer with these vectors (one per input)."""

    vectors: tuple[tuple[float, ...], ...]
    prompt_tokens: int | None = None


class Stream:
    """A 200 answer whose body is ``chunk`` sent ``count`` times, ``delay_secs`` apart.

    A hostile or broken provider: a flood far larger than any answer (the client must stop
    reading at its cap), a drip that keeps every single read under the read timeout (only a
    deadline for the whole answer ends it), or a body that is not a chat answer at all.
    ``chunks_sent`` counts what the server wrote, so a test can prove the client stopped early
    by a count instead of a clock; ``headers`` are sent as given (``Content-Encoding: gzip``
    with ``chunk`` a piece of one gzip stream makes a decompression bomb).
    """

    def __init__(
        self,
        chunk: bytes,
        count: int,
        *,
        delay_secs: float = 0.0,
        headers: Mapping[str, str] | None = None,
        prefix: bytes = b"",
        suffix: bytes = b"",
    ) -> None:
        self.chunk = chunk
        self.count = count
        self.delay_secs = delay_secs
        self.headers = dict(headers or {})
        self.prefix = prefix
        self.suffix = suffix
        self._lock = threading.Lock()
        self._sent = 0

    @property
    def chunks_sent(self) -> int:
        with self._lock:
            return self._sent

    def _count_sent(self) -> None:
        with self._lock:
            self._sent += 1


Step = Reply | Status | Hang | Vectors | Stream


def reply(
    content: str | Mapping[str, Any] | Sequence[Any],
    *,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    finish_reason: str = "stop",
) -> Reply:
    """Answer ``content``; a mapping or list is sent as its JSON text."""
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(text, prompt_tokens, completion_tokens, finish_reason)


def fenced(value: Mapping[str, Any], *, prose: bool = True) -> Reply:
    """JSON wrapped in a ```json fence, with chatty prose around it unless ``prose=False``."""
    body = f"```json\n{json.dumps(value, indent=2)}\n```"
    return Reply(
        f"Here is the review:\n\n{body}\n\nLet me know if you need more." if prose else body
    )


def truncated(value: Mapping[str, Any]) -> Reply:
    """The JSON text of ``value`` cut in the middle, as when ``max_tokens`` runs out."""
    text = json.dumps(value)
    return Reply(text[: max(1, len(text) // 2)], finish_reason="length")


def invalid_json() -> Reply:
    """Text that no JSON parser accepts and that holds no complete object."""
    return Reply("{'findings': [oops, this is not JSON")


def rate_limited(retry_after: float | str | None = 1) -> Status:
    """429 with ``Retry-After`` (seconds or an HTTP date; ``None`` sends no header)."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return Status(429, "Rate limit reached, slow down", headers)


def server_error(status: int = 500, message: str = "internal server error") -> Status:
    return Status(status, message)


def hang(seconds: float = MAX_HANG_SECS) -> Hang:
    return Hang(seconds)


def vectors(*rows: Sequence[float], prompt_tokens: int | None = None) -> Vectors:
    return Vectors(tuple(tuple(float(x) for x in row) for row in rows), prompt_tokens)


def hashed_embedding(text: str, dim: int = EMBEDDING_DIM) -> tuple[float, ...]:
    """A deterministic unit vector: hashed bag of lower-cased words (zero text: unit e0)."""
    acc = [0.0] * dim
    for word in text.lower().split():
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % dim
        acc[index] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(x * x for x in acc))
    if norm == 0:
        return (1.0,) + (0.0,) * (dim - 1)
    return tuple(x / norm for x in acc)


# -- recording ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. ``headers`` has lower-cased names, no Authorization."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    auth_scheme: str | None  # "Bearer" when an Authorization header was sent
    key_ok: bool | None  # whether it matched ``require_key`` (None: no key required)

    @property
    def messages(self) -> list[dict[str, Any]]:
        found = self.body.get("messages", []) if isinstance(self.body, dict) else []
        return list(found)

    @property
    def response_format(self) -> dict[str, Any] | None:
        found = self.body.get("response_format") if isinstance(self.body, dict) else None
        return found if isinstance(found, dict) else None

    def text(self) -> str:
        """Every message's content joined, for ``in`` assertions."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


# -- control object -------------------------------------------------------------------------------

Responder = Callable[[RecordedRequest], Step]


class ScriptedModel:
    """What a test controls: scripts, served models, required key; what it inspects: requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Forget scripts and records; release anything still hanging."""
        self.release_hangs()
        with self._lock:
            self._queues: dict[str, deque[Step]] = {
                "chat": deque(),
                "embeddings": deque(),
                "models": deque(),
            }
            self._responders: dict[str, Responder | None] = {"chat": None, "embeddings": None}
            self._requests: list[RecordedRequest] = []
            self._unscripted: list[RecordedRequest] = []
            self.models: list[str] = list(DEFAULT_MODELS)
            self.require_key: str | None = None
            self.allow_unscripted = False

    def script(self, *steps: Step, endpoint: str = "chat") -> ScriptedModel:
        """Queue ``steps`` for ``endpoint`` ("chat", "embeddings" or "models"), in order."""
        with self._lock:
            self._queues[endpoint].extend(steps)
        return self

    def respond_with(self, responder: Responder | None, *, endpoint: str = "chat") -> None:
        """Answer with ``responder(request)`` whenever the endpoint's queue is empty."""
        with self._lock:
            self._responders[endpoint] = responder

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to("/v1/chat/completions")

    @property
    def unscripted(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._unscripted)

    @property
    def pending_steps(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    def release_hangs(self) -> None:
        """End every request hanging now; ``hang`` steps served later hang again."""
        with self._lock:
            self._released.set()
            self._released = threading.Event()

    # -- used by the server ------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_step(self, endpoint: str, request: RecordedRequest) -> Step | None:
        with self._lock:
            queue = self._queues[endpoint]
            if queue:
                return queue.popleft()
            responder = self._responders.get(endpoint)
        return responder(request) if responder is not None else None

    def _mark_unscripted(self, request: RecordedRequest) -> None:
        with self._lock:
            self._unscripted.append(request)

    def _release_event(self) -> threading.Event:
        with self._lock:
            return self._released

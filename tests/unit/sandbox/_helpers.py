"""Helpers for the sandbox unit tests: run a function in a forked child, skip with a reason."""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from auto_review.sandbox import Tier, host_support


def in_child(func: Callable[[], Any]) -> Any:
    """Run ``func`` in a forked child (irreversible confinement stays there); return its result."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            try:
                result: Any = {"value": func()}
            except BaseException as exc:
                result = {"error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()}
            os.write(write_fd, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    data = json.loads(b"".join(chunks) or b'{"error": "child died"}')
    if "error" in data:
        raise AssertionError(f"child failed: {data['error']}\n{data.get('tb', '')}")
    return data["value"]


def require(tier: Tier) -> None:
    """Skip the test, naming the missing kernel feature, when ``tier`` cannot hold here."""
    support = host_support()
    if tier is Tier.FULL and not support.user_namespaces.available:
        pytest.skip(f"unprivileged user namespaces unavailable: {support.user_namespaces.detail}")
    if tier is not Tier.NONE and not support.seccomp.available:
        pytest.skip(f"seccomp filtering unavailable: {support.seccomp.detail}")
    if tier is Tier.RESTRICTED and support.landlock_abi < 4:
        pytest.skip(f"Landlock ABI >= 4 unavailable (kernel offers {support.landlock_abi})")


def require_landlock(abi: int) -> None:
    """Skip unless the kernel offers Landlock ABI ``abi`` or newer."""
    have = host_support().landlock_abi
    if have < abi:
        pytest.skip(f"Landlock ABI >= {abi} unavailable (kernel offers {have})")


def ask_proxy(*targets: str) -> str:
    """A bash script asking a clone job's egress proxy (127.0.0.1:3128 inside) for a tunnel to
    each ``host:port`` in turn, printing the status line of each answer."""
    ask = (
        "ask() { exec 3<>/dev/tcp/127.0.0.1/3128"
        ' && printf "CONNECT %s HTTP/1.1\\r\\n\\r\\n" "$1" >&3 && head -n 1 <&3; exec 3<&-; }; '
    )
    return ask + "; ".join(f"ask {target}" for target in targets)

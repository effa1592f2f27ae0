"""The fixed report-fd messages of the supervisor and the job, built without ``json``.

A freshly forked child pays for every page it touches first; ``json.dumps`` touches enough of
the encoder to cost ~0.2 ms per child (docs/dev/REDTEAM-FINDINGS.md F3). These messages hold
names, integers and booleans, so they are formatted directly (a non-empty list of paths, only
outside the full tier, still goes through ``json``); what they produce is plain JSON, one object
per line, read by ``_io``. Error reports keep using ``json`` (rare path).
"""

from __future__ import annotations

import json
import os

from auto_review.sandbox import landlock

__all__ = ["json_int", "posture_line", "send_line"]


def send_line(fd: int, line: bytes) -> None:
    """One message, one write (below PIPE_BUF, so B's and C's lines never interleave)."""
    os.write(fd, line + b"\n")


def json_int(value: int | None) -> bytes:
    """``value`` as a JSON number, or null."""
    return b"null" if value is None else b"%d" % value


def _ints(values: dict[str, int]) -> bytes:
    return b",".join([b'"%s":%d' % (key.encode(), value) for key, value in values.items()])


def _bool(value: bool) -> bytes:
    return b"true" if value else b"false"


def posture_line(
    status: dict[str, int],
    ns: dict[str, int],
    applied: dict[str, int],
    *,
    bounding: bool,
    exec_writable: list[str],
    ll: landlock.LandlockResult,
) -> bytes:
    """The job's read-back as one JSON object (only its list of paths, empty in the full tier,
    goes through ``json``)."""
    paths = json.dumps(exec_writable).encode() if exec_writable else b"[]"
    return (
        b'{"event":"posture","status":{%s},"ns":{%s},"rlimits":{%s},"bounding_dropped":%s,'
        b'"exec_writable":%s,'
        b'"landlock":{"abi":%d,"fs_rules":%d,"tcp_bind":%s,"tcp_connect":%s,"scoped":%s}}'
        % (
            _ints(status),
            _ints(ns),
            _ints(applied),
            _bool(bounding),
            paths,
            ll.abi,
            ll.fs_rules,
            _bool(ll.tcp_bind),
            _bool(ll.tcp_connect),
            _bool(ll.scoped),
        )
    )

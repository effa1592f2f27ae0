"""The hand-built report lines are plain JSON that the parent's reader understands."""

from __future__ import annotations

import json

from auto_review.sandbox._messages import json_int, posture_line
from auto_review.sandbox.landlock import LandlockResult


def test_posture_line_is_json_with_every_value_in_place() -> None:
    status = {"no_new_privs": 1, "seccomp": 2, "cap_eff": 0}
    ns = {"user": 4026532323, "net": 4026532254}
    rlimits = {"core": 0, "address_space": 2147483648}
    ll = LandlockResult(abi=7, fs_rules=27, tcp_bind=True, tcp_connect=False, scoped=True)
    paths = ['/work/job "dir"', "/tmp/\u00e9"]
    message = json.loads(
        posture_line(status, ns, rlimits, bounding=False, exec_writable=paths, ll=ll)
    )
    assert message == {
        "event": "posture",
        "status": status,
        "ns": ns,
        "rlimits": rlimits,
        "bounding_dropped": False,
        "exec_writable": paths,
        "landlock": {
            "abi": 7,
            "fs_rules": 27,
            "tcp_bind": True,
            "tcp_connect": False,
            "scoped": True,
        },
    }


def test_posture_line_writes_an_empty_list_of_exec_writable_paths() -> None:
    ll = LandlockResult(abi=0)
    assert (
        json.loads(posture_line({}, {}, {}, bounding=True, exec_writable=[], ll=ll))[
            "exec_writable"
        ]
        == []
    )


def test_json_int_writes_null_for_none_and_digits_otherwise() -> None:
    assert json.loads(b'{"v":%s}' % json_int(None)) == {"v": None}
    assert json.loads(b'{"v":%s}' % json_int(-9)) == {"v": -9}

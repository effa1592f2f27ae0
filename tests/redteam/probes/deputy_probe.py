"""A subverted gateway: inside a launched sandbox, ask the job server for more than its grant.

usage: python deputy_probe.py PROBES_DIR STATE_DIR OUTSIDE_DIR PORT
Runs as the launched inner process (it reads the launcher's handoff on fd 3 like the gateway
does), then sends hand-made job requests over the job-server channel and prints one JSON line
per case: whether the server refused it and, for jobs that ran, the job's output. Every job is
the Python probe with a bounded action; nothing here can outlive the launcher.
"""

from __future__ import annotations

import json
import os
import sys

from auto_review.sandbox import _jobs, clone_policy, interpreter_paths, read_handoff, run_policy
from auto_review.sandbox.errors import SandboxError


def _request(policy: dict[str, object], argv: list[str]) -> dict[str, object]:
    return {
        "argv": argv,
        "policy": policy,
        "stdin": _jobs.b64(b""),
        "env": {},
        "cwd": None,
        "timeout": 60,
        "memory_bytes": None,
        "max_output_bytes": 1 << 20,
        "isolation": "full",
    }


def _case(name: str, policy: dict[str, object], argv: list[str]) -> None:
    try:
        answer = _jobs.remote_run(_request(policy, argv))
    except SandboxError as exc:
        print(json.dumps({"case": name, "refused": True, "error": exc.message}), flush=True)
    else:
        out = _jobs.unb64(str(answer["stdout"])).decode(errors="replace")
        print(json.dumps({"case": name, "refused": False, "stdout": out}), flush=True)


def main(probes: str, state: str, outside: str, port: str) -> int:
    """Try each abuse of the job server once."""
    read_handoff()
    pyprobe = [sys.executable, "-I", "-S", os.path.join(probes, "pyprobe.py")]
    base = _jobs.policy_to_wire(run_policy(ro=[probes, *interpreter_paths()]))

    _case("control", base, [*pyprobe, "selfcheck"])
    unbounded = dict(base)
    unbounded["limits"] = {
        "cpu_seconds": None,
        "address_space_bytes": None,
        "file_size_bytes": None,
        "open_files": 1 << 20,
        "processes": None,
    }
    unbounded["tmp_size_bytes"] = 1 << 40
    _case("unbounded_limits", unbounded, [*pyprobe, "status"])
    _case(
        "ro_outside_grant",
        {**base, "ro_paths": [*base["ro_paths"], outside]},
        [*pyprobe, "listdir", outside],
    )
    link = os.path.join(state, "tmp", "deputy-link")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.lexists(link):
        os.symlink(outside, link)
    _case("rw_symlink_in_state", {**base, "rw_paths": [link]}, [*pyprobe, "listdir", link])
    _case(
        "listen",
        {**base, "network": True, "tcp_bind_ports": None, "tcp_connect_ports": [int(port)]},
        [*pyprobe, "selfcheck"],
    )
    _case(
        "unlisted_port",
        {**base, "network": True, "tcp_bind_ports": [], "tcp_connect_ports": [int(port) + 1]},
        [*pyprobe, "selfcheck"],
    )
    # F9: the host network on a granted port (any address on it) instead of the proxied forge.
    _case(
        "host_network_on_granted_port",
        {**base, "network": True, "tcp_bind_ports": [], "tcp_connect_ports": [int(port)]},
        [*pyprobe, "selfcheck"],
    )
    job = os.path.join(state, "tmp", "deputy-clone")
    os.makedirs(job, exist_ok=True)
    ro = [probes, *interpreter_paths()]
    _case(
        "clone_to_ungranted_origin",
        _jobs.policy_to_wire(clone_policy(job, egress=[("127.0.0.2", int(port))], ro=ro)),
        [*pyprobe, "selfcheck"],
    )
    _case(
        "clone_to_granted_origin",
        _jobs.policy_to_wire(clone_policy(job, egress=[("127.0.0.1", int(port))], ro=ro)),
        [*pyprobe, "selfcheck"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))

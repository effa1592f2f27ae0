"""The gateway boundary: secrets over a pipe, posture handed in, ports, state, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.sandbox._helpers import ask_proxy, require, require_landlock

from auto_review.sandbox import Tier, gateway_policy, interpreter_paths
from auto_review.sandbox.launcher import launch

pytestmark = pytest.mark.sandbox

INNER = """
import json, os, socket, sys
from auto_review.sandbox.launcher import read_handoff

handoff = read_handoff()
state = sys.argv[1]
listen, other, upstream, closed = (int(p) for p in sys.argv[2:6])

def errno_of(action):
    try:
        action()
    except OSError as exc:
        return exc.errno
    return 0

def bind(port):
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))

def connect(port):
    with socket.socket() as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))

counter = os.path.join(state, "counter")
runs = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
open(counter, "w").write(str(runs))
print(json.dumps({
    "secrets": dict(handoff.secrets),
    "env_has_secret": any("hunter2" in v for v in os.environ.values()),
    "controls": {c.name: c.state for c in handoff.posture.controls},
    "runs": runs,
    "bind_listen": errno_of(lambda: bind(listen)),
    "bind_other": errno_of(lambda: bind(other)),
    "connect_upstream": errno_of(lambda: connect(upstream)),
    "connect_closed": errno_of(lambda: connect(closed)),
    "shadow": errno_of(lambda: open("/etc/shadow").read()),
    "home": errno_of(lambda: open(os.path.expanduser("~root") + "/.bashrc").read()),
}), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def upstream() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield int(server.getsockname()[1])
    server.close()


@pytest.fixture
def inner(tmp_path: Path) -> Path:
    script = tmp_path / "inner.py"
    script.write_text(INNER)
    tmp_path.chmod(0o755)
    return script


def _launch_once(inner: Path, state: Path, ports: list[int], out: Path) -> dict[str, object]:
    listen, _other, upstream, _closed = ports
    policy = gateway_policy(
        str(state),
        listen_port=listen,
        upstream_ports=[upstream],
        ro=[*interpreter_paths(), str(inner.parent)],
    )
    with out.open("wb") as sink:
        result = launch(
            [sys.executable, "-I", str(inner), str(state), *map(str, ports)],
            policy,
            secrets={"AR_FORGEJO_TOKEN": "hunter2"},
            env={},
            stdio=(0, sink.fileno(), 2),
        )
    assert result.returncode == 0, result.cause
    return json.loads(out.read_text().splitlines()[-1])


def test_gateway_gets_secrets_by_pipe_ports_state_and_no_host_secrets(
    inner: Path, tmp_path: Path, upstream: int
) -> None:
    require(Tier.FULL)
    require_landlock(4)
    state = tmp_path / "state"
    state.mkdir()
    ports = [_free_port(), _free_port(), upstream, _free_port()]
    first = _launch_once(inner, state, ports, tmp_path / "out1")
    second = _launch_once(inner, state, ports, tmp_path / "out2")
    assert first["secrets"] == {"AR_FORGEJO_TOKEN": "hunter2"}
    assert first["env_has_secret"] is False
    assert first["controls"]["pid_namespace"] == "on"  # type: ignore[index]
    assert first["controls"]["net_namespace"] == "off"  # type: ignore[index]
    assert (first["bind_listen"], first["bind_other"]) == (0, 13)  # EACCES from Landlock
    assert (first["connect_upstream"], first["connect_closed"]) == (0, 13)
    assert first["shadow"] == 2  # ENOENT: not in the view
    assert first["home"] == 2
    assert (first["runs"], second["runs"]) == (1, 2)  # state survives a restart


def test_sigterm_to_the_launcher_reaches_the_gateway_and_its_status_comes_back(
    tmp_path: Path,
) -> None:
    require(Tier.FULL)
    script = tmp_path / "waiter.py"
    script.write_text(
        "import signal, sys, time\n"
        "from auto_review.sandbox.launcher import read_handoff\n"
        "read_handoff()\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(5))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        "from auto_review.sandbox import gateway_policy, interpreter_paths\n"
        "from auto_review.sandbox.launcher import launch\n"
        f"p = gateway_policy({str(tmp_path)!r}, listen_port=1, upstream_ports=[],"
        f" ro=[*interpreter_paths()])\n"
        f"r = launch([sys.executable, '-I', {str(script)!r}], p, secrets={{}}, env={{}})\n"
        "print(r.cause, flush=True)\n"
        "sys.exit(r.returncode)\n"
    )
    tmp_path.chmod(0o755)
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 5
    assert "exited with status 5" in out


def test_read_handoff_outside_a_sandbox_is_refused() -> None:
    from auto_review.sandbox import SandboxError
    from auto_review.sandbox.launcher import read_handoff

    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"{}")
    os.close(write_fd)
    with pytest.raises(SandboxError):
        read_handoff(read_fd)


JOBS_INNER = """
import json, sys
from auto_review.sandbox import SandboxError, read_handoff, run_callable, run_command, run_policy

read_handoff()
state = sys.argv[1]
out = {}
done = run_command(["sh", "-c", "id -u; grep Seccomp: /proc/self/status; echo hi > $0/x", state],
                   run_policy(rw=[state]), timeout=60)
out["cmd"] = [done.returncode, done.stdout.decode()]
out["callable"] = run_callable("base64:b64encode", b"abc", run_policy(), timeout=60).decode()
for name, policy in (("rw_outside", lambda: run_policy(rw=["/tmp"])),
                     ("ro_outside", lambda: run_policy(ro=["/etc"]))):
    try:
        run_command(["true"], policy(), timeout=60)
        out[name] = "ran"
    except SandboxError as exc:
        out[name] = type(exc).__name__
print(json.dumps(out), flush=True)
"""


def test_gateway_jobs_run_in_sandboxes_of_the_job_server_within_the_grant(tmp_path: Path) -> None:
    require(Tier.FULL)
    script = tmp_path / "jobs_inner.py"
    script.write_text(JOBS_INNER)
    state = tmp_path / "state"
    state.mkdir()
    tmp_path.chmod(0o755)
    policy = gateway_policy(
        str(state),
        listen_port=_free_port(),
        upstream_ports=[443],
        ro=[*interpreter_paths(), str(tmp_path)],
    )
    out = tmp_path / "out"
    with out.open("wb") as sink:
        result = launch(
            [sys.executable, "-I", str(script), str(state)],
            policy,
            secrets={},
            env={},
            stdio=(0, sink.fileno(), 2),
            job_server=True,
        )
    assert result.returncode == 0, result.cause
    seen = json.loads(out.read_text().splitlines()[-1])
    assert seen["cmd"] == [0, "1000\nSeccomp:\t2\n"]
    assert (state / "x").read_text() == "hi\n"
    assert seen["callable"] == "YWJj"
    assert seen["rw_outside"] == "SandboxPolicyInvalid"  # a subverted gateway gets no deputy
    assert seen["ro_outside"] == "SandboxPolicyInvalid"


EGRESS_INNER = """
import json, sys
from auto_review.sandbox import SandboxTimeout, clone_policy, read_handoff, run_command

read_handoff()
job, port, refused, both = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
policy = clone_policy(job, egress=[("127.0.0.1", port)])
done = run_command(["bash", "-c", both + "; exit 3"], policy, timeout=60)
out = {"returncode": done.returncode, "egress": done.egress.to_dict()}
try:
    run_command(["bash", "-c", refused + "; sleep 30"], policy, timeout=2)
except SandboxTimeout as exc:
    out["timeout_egress"] = exc.egress.to_dict()
print(json.dumps(out), flush=True)
"""


def test_gateway_clone_jobs_bring_their_egress_refusals_back_from_the_job_server(
    tmp_path: Path, upstream: int
) -> None:
    require(Tier.FULL)
    script = tmp_path / "egress_inner.py"
    script.write_text(EGRESS_INNER)
    state = tmp_path / "state"
    (state / "job").mkdir(parents=True)
    tmp_path.chmod(0o755)
    policy = gateway_policy(
        str(state),
        listen_port=_free_port(),
        upstream_ports=[upstream],
        ro=[*interpreter_paths(), str(tmp_path)],
    )
    argv = [sys.executable, "-I", str(script), str(state / "job"), str(upstream)]
    argv += [ask_proxy("evil.example:443"), ask_proxy("evil.example:443", f"127.0.0.1:{upstream}")]
    out = tmp_path / "out"
    with out.open("wb") as sink:
        result = launch(
            argv,
            policy,
            secrets={},
            env={},
            stdio=(0, sink.fileno(), 2),
            job_server=True,
            job_egress=[("127.0.0.1", upstream)],
        )
    assert result.returncode == 0, result.cause
    seen = json.loads(out.read_text().splitlines()[-1])
    refused = [403, "destination not allowed by the sandbox policy", "evil.example:443"]
    assert seen["returncode"] == 3
    assert seen["egress"] == {"tunnels": 1, "refusals": [refused]}  # the forge: the control
    assert seen["timeout_egress"] == {"tunnels": 0, "refusals": [refused]}

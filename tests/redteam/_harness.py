"""Run red-team probes twice: on the host (the attack must work) and in the sandbox (it must not).

A probe prints JSON lines; the last line carrying ``ok`` is its verdict. A sandboxed run goes
through the real CLI, ``python -m auto_review sandbox run ... -- PROBE``, exactly as an operator
would, so the suite tests the shipped entry point and not a test-only path.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CLI",
    "PROBE_PYTHON",
    "Listener",
    "Outcome",
    "Probes",
    "run_host",
    "run_sandboxed",
    "sandbox_argv",
    "signal_name",
]

CLI: tuple[str, ...] = (sys.executable, "-m", "auto_review")
"""The auto-review CLI as the suite runs it: the test interpreter with the installed package."""


def _runnable_by_others(path: str) -> bool:
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (real, *real.parents))


PROBE_PYTHON: str = (
    sys.executable
    if os.geteuid() != 0 or _runnable_by_others(sys.executable)
    else "/usr/bin/python3"
)
"""The interpreter of the Python probes: this one, unless the suite runs as root from an
interpreter host nobody cannot reach (root's pyenv under /root, mode 0700): a root-started job
is nobody, and in the restricted tier no bind brings the interpreter to it (F11)."""

_SETUP_TIMEOUT_S = 120.0
"""Upper bound for one probe run; probes bound their own loops far below this."""


@dataclass(frozen=True)
class Outcome:
    """What one probe run produced: exit status, output, and the parsed JSON lines."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    lines: tuple[dict[str, object], ...] = field(default=())

    @property
    def result(self) -> dict[str, object] | None:
        """The probe's verdict: the last JSON line with an ``ok`` key (None: it never got there)."""
        for line in reversed(self.lines):
            if "ok" in line:
                return line
        return None

    @property
    def started(self) -> bool:
        """True when the probe printed at least one line, i.e. it ran inside the sandbox."""
        return bool(self.lines)

    @property
    def ok(self) -> bool:
        """True when the attack worked."""
        return bool(self.result and self.result["ok"])

    @property
    def errno(self) -> str:
        """The errno name the probe reported, '' when none."""
        return str(self.result.get("errno", "")) if self.result else ""

    def describe(self) -> str:
        """A compact account of the run for assertion messages."""
        return (
            f"argv={' '.join(self.argv)}\nrc={self.returncode}\n"
            f"stdout={self.stdout[-2000:]}\nstderr={self.stderr[-2000:]}"
        )


def _parse(stdout: str) -> tuple[dict[str, object], ...]:
    lines = []
    for raw in stdout.splitlines():
        text = raw.strip()
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue
    return tuple(lines)


def _run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    pass_fds: Sequence[int],
    cwd: Path | None,
    stdin: int | None = subprocess.DEVNULL,
) -> Outcome:
    proc = subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        pass_fds=tuple(pass_fds),
        cwd=cwd,
        start_new_session=True,  # a runaway probe is killed as a group below
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=_SETUP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return Outcome(tuple(argv), proc.returncode, out, err, _parse(out))


def run_host(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> Outcome:
    """Run a probe unsandboxed, to prove the attack works on this host as this user."""
    return _run(argv, env=env, pass_fds=pass_fds, cwd=cwd, stdin=stdin)


def sandbox_argv(
    argv: Sequence[str],
    *,
    policy: str = "run",
    ro: Sequence[Path] = (),
    rw: Sequence[Path] = (),
    net: bool = False,
    timeout_s: float | None = None,
    memory: str | None = None,
    isolation: str | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """The CLI command line that runs ARGV under POLICY (tier: AR_ISOLATION unless given;
    ``options``: further CLI options such as ``--port N`` or ``--listen N``)."""
    cmd = [*CLI, "sandbox", "run", "--policy", policy]
    if isolation is not None:
        cmd += ["--isolation", isolation]
    for path in ro:
        cmd += ["--ro", str(path)]
    for path in rw:
        cmd += ["--rw", str(path)]
    if net:
        cmd.append("--net")
    if timeout_s is not None:
        cmd += ["--timeout", f"{timeout_s:g}"]
    if memory is not None:
        cmd += ["--memory", memory]
    return [*cmd, *options, "--", *argv]


def run_sandboxed(
    argv: Sequence[str],
    *,
    policy: str = "run",
    ro: Sequence[Path] = (),
    rw: Sequence[Path] = (),
    net: bool = False,
    timeout_s: float | None = None,
    memory: str | None = None,
    isolation: str | None = None,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    cwd: Path | None = None,
    prefix: Sequence[str] = (),
    stdin: int | None = subprocess.DEVNULL,
) -> Outcome:
    """Run a probe through ``auto-review sandbox run`` (``prefix``: e.g. an ``unshare`` wrapper
    that changes what the host offers)."""
    cmd = sandbox_argv(
        argv,
        policy=policy,
        ro=ro,
        rw=rw,
        net=net,
        timeout_s=timeout_s,
        memory=memory,
        isolation=isolation,
        options=options,
    )
    return _run([*prefix, *cmd], env=env, pass_fds=pass_fds, cwd=cwd, stdin=stdin)


@dataclass
class Listener:
    """A loopback server (started by a fixture) that answers 'ack' and records what it heard."""

    address: str | tuple[str, int]
    received: list[bytes] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The TCP/UDP port of an inet listener."""
        assert isinstance(self.address, tuple)
        return self.address[1]


def signal_name(returncode: int) -> str:
    """The signal a process died of, from a Popen code (-N) or a shell-style code (128+N)."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        return signal.Signals(number).name if number else ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class Probes:
    """Where the probes of one test session live, and how to invoke them."""

    directory: Path
    binaries: Mapping[str, Path]
    missing: Mapping[str, str]
    """Probe name -> why it could not be built (e.g. the i386 multilib is not installed)."""

    @property
    def pyprobe(self) -> list[str]:
        """argv prefix of the Python probe, run with this interpreter, isolated from site."""
        return [PROBE_PYTHON, "-I", "-S", str(self.directory / "pyprobe.py")]

    def c(self, name: str) -> list[str]:
        """argv prefix of compiled probe NAME."""
        return [str(self.binaries[name])]

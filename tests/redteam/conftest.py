"""Fixtures of the red-team suite: probes built at session start, host-side targets and listeners.

Everything an attack aims at is created here by the test, owned by the user running the suite,
so the unsandboxed control succeeds as root and as an unprivileged user alike. Network targets
are loopback listeners only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.redteam._harness import PROBE_PYTHON, Listener, Probes

_PROBE_SOURCES = Path(__file__).parent / "probes"
_C_PROBES = (
    "try_syscall",
    "tiocsti",
    "attach",
    "forkbomb",
    "membomb",
    "euid",
    "x32",
    "int80",
    "meiwrite",
    "setid",
    "hostipc",
)


def _compile(cc: str, source: Path, output: Path, *flags: str) -> str:
    """Build one probe; returns '' on success or the compiler's complaint."""
    proc = subprocess.run(
        [cc, "-O1", "-Wall", "-Wextra", *flags, "-o", str(output), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1]


def _host_base() -> Path:
    """A host directory for test files outside /tmp (the sandbox hides /tmp behind its own)."""
    home = Path.home()
    return home if os.access(home, os.W_OK) else Path("/var/tmp")


@pytest.fixture(scope="session")
def probes() -> Iterator[Probes]:
    """Compile the C probes with the system compiler and stage the Python probe next to them.

    They live outside /tmp: a sandbox mounts its private /tmp over the host's.
    """
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (gcc) on PATH: the compiled red-team probes cannot be built")
    # A root-started job is host nobody; in the restricted tier it meets the host's own
    # directory modes, and root's home is closed to others.
    base = _host_base() if os.geteuid() != 0 else Path("/var/tmp")
    directory = Path(tempfile.mkdtemp(prefix=".ar-redteam-probes-", dir=base))
    try:
        directory.chmod(0o755)
        yield _build_probes(cc, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _build_probes(cc: str, directory: Path) -> Probes:
    binaries: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for name in _C_PROBES:
        problem = _compile(cc, _PROBE_SOURCES / f"{name}.c", directory / name)
        if problem:
            pytest.fail(f"probe {name} does not build with {cc}: {problem}")
        binaries[name] = directory / name
    # A genuine 32-bit process needs the i386 multilib (Debian: gcc-multilib, libc6-dev-i386).
    problem = _compile(cc, _PROBE_SOURCES / "i386.c", directory / "i386", "-m32", "-static")
    if problem:
        missing["i386"] = (
            f"{cc} -m32 -static fails ({problem}): the i386 multilib is not installed "
            "(Debian: gcc-multilib libc6-dev-i386)"
        )
    else:
        binaries["i386"] = directory / "i386"
    for script in ("pyprobe.py", "callable_probe.py", "deputy_probe.py"):
        shutil.copy(_PROBE_SOURCES / script, directory / script)
    return Probes(directory=directory, binaries=binaries, missing=missing)


@pytest.fixture(scope="session")
def python_view() -> tuple[Path, ...]:
    """Host paths the interpreter needs inside a sandbox to run the Python probe (read-only)."""
    if sys.executable != PROBE_PYTHON:
        return ()  # the system's interpreter: the system view has it
    candidates = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
        Path(sysconfig.get_paths()["stdlib"]),
    }
    system = (Path("/usr"), Path("/lib"), Path("/lib64"), Path("/bin"))
    keep = {p for p in candidates if not any(p == s or s in p.parents for s in system)}
    # Drop paths already covered by another kept path.
    return tuple(sorted(p for p in keep if not any(q in p.parents for q in keep)))


@pytest.fixture
def fake_home() -> Iterator[Path]:
    """A directory under the real home holding a planted secret (``.ssh/id_ed25519``).

    It sits where the host view would show it (not under /tmp, which the sandbox replaces), so a
    sandbox that merely hides /tmp does not pass by accident.
    """
    home = Path(tempfile.mkdtemp(prefix=".ar-redteam-home-", dir=_host_base()))
    try:
        home.chmod(0o700)
        ssh = home / ".ssh"
        ssh.mkdir(mode=0o700)
        key = ssh / "id_ed25519"
        key.write_text(f"AR-FAKE-PRIVATE-KEY-{secrets.token_hex(8)}\n")
        key.chmod(0o600)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A host directory outside /tmp for writable binds and for 'write outside' targets."""
    path = Path(tempfile.mkdtemp(prefix=".ar-redteam-scratch-", dir=_host_base()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _serve_stream(sock: socket.socket, listener: Listener, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            try:
                # Read the whole of a short request (a proxied head is ~100 bytes): closing
                # with unread data would answer RST and could discard our ack in flight.
                listener.received.append(conn.recv(4096))
                conn.sendall(b"ack\n")
            except OSError:
                continue


def _serve_datagram(
    sock: socket.socket, listener: Listener, stop: threading.Event, *, dns: bool
) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(512)
        except TimeoutError:
            continue
        except OSError:
            return
        listener.received.append(data)
        if dns and len(data) > 12:  # answer any query with A 127.0.0.1
            answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01"
            sock.sendto(
                data[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + data[12:] + answer, peer
            )
        else:
            sock.sendto(b"ack\n", peer)


@pytest.fixture
def serve() -> Iterator[object]:
    """Factory for loopback listeners: ``serve("tcp"|"udp"|"dns"|"unix"|"abstract", path)``;
    TCP listeners take ``host`` (a 127.0.0.0/8 address) and ``port``."""
    stops: list[tuple[threading.Event, threading.Thread, socket.socket]] = []

    def start(
        kind: str, path: Path | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> Listener:
        if kind == "tcp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, port))
        elif kind in {"udp", "dns"}:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
        elif kind == "unix":
            assert path is not None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(path))
            path.chmod(0o777)
        elif kind == "abstract":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind("\0ar-redteam-" + secrets.token_hex(6))
        else:
            raise ValueError(kind)
        name = sock.getsockname()
        if kind == "abstract":
            address: str | tuple[str, int] = "@" + name[1:].decode()
        elif kind == "unix":
            address = str(path)
        else:
            address = (name[0], name[1])
        listener = Listener(address)
        stop = threading.Event()
        if kind in {"udp", "dns"}:
            thread = threading.Thread(
                target=_serve_datagram,
                args=(sock, listener, stop),
                kwargs={"dns": kind == "dns"},
                daemon=True,
            )
        else:
            sock.listen(8)
            thread = threading.Thread(
                target=_serve_stream, args=(sock, listener, stop), daemon=True
            )
        thread.start()
        stops.append((stop, thread, sock))
        return listener

    yield start
    for stop, thread, sock in stops:
        stop.set()
        thread.join(timeout=5)
        sock.close()


@pytest.fixture
def host_sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A host process of our own uid holding a fake secret in its environment (a target)."""
    env = {"PATH": "/usr/bin:/bin", "AR_REDTEAM_VICTIM_SECRET": "ar-victim-" + secrets.token_hex(6)}
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", "import time; time.sleep(120)"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


_VICTIM = """
import pathlib, signal, sys, time
mark = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGURG, lambda *_: mark.write_text("SIGURG"))
print("ready", flush=True)
end = time.monotonic() + 120
while time.monotonic() < end:
    time.sleep(0.1)
"""


@pytest.fixture
def signal_victim(scratch: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A host process of our uid that records SIGURG in a file (SIGURG's default action is to
    ignore it, so a kill(-1, SIGURG) from a broken sandbox harms no other process)."""
    mark = scratch / "victim-got-signal"
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _VICTIM, str(mark)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        yield proc, mark
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()

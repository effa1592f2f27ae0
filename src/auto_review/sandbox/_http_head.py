"""The egress proxy's parser of a client's request head: hostile input, parsed strictly.

``parse_head`` accepts exactly the two forms a git client sends a proxy, ``CONNECT host:port``
and an absolute-form ``http://host[:port]/path`` request, and returns the checked target (and
for the latter the head rewritten to origin-form with ``Connection: close``, so one connection
carries one request to one origin). Anything else raises ``Refused`` with an HTTP status and a
fixed reason that never quotes the input. Bounds: ``MAX_HEAD_BYTES`` and ``MAX_HEADERS``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "Refused",
    "Request",
    "normalise_host",
    "parse_head",
    "response",
]

MAX_HEAD_BYTES: Final = 16 * 1024  # request line + headers; git/curl send well under 1 KiB
MAX_HEADERS: Final = 64
_TCHAR: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_IPV6_CHARS: Final = frozenset("0123456789abcdef:.")
# Hop-by-hop and proxy-only headers, dropped from a forwarded request (RFC 9110 §7.6.1);
# Host is re-written from the checked target.
_DROPPED: Final = frozenset(
    {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade", "host"}
)
_REASONS: Final = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def normalise_host(host: str) -> str | None:
    """``host`` lower-cased (an IPv6 literal without brackets), or None if it is not a plain DNS
    name, IPv4 or IPv6 literal (no userinfo, zone id, percent-encoding or trailing dot)."""
    text = host.lower()
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1] if _is_ipv6(text[1:-1]) else None
    if _is_ipv6(text):
        return text  # an IPv6 literal given without brackets (policy side only)
    if not text or len(text) > 253 or not set(text) <= _HOST_CHARS:
        return None
    labels = text.split(".")
    if any(not label or len(label) > 63 or label[0] == "-" or label[-1] == "-" for label in labels):
        return None
    return text


def _is_ipv6(text: str) -> bool:
    # An address, not just its characters: a job's refused destination is recorded, and a
    # string of 45 hex digits and colons would carry a whole token there.
    if not set(text) <= _IPV6_CHARS or len(text) > 45:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Request:
    method: str
    host: str  # normalised
    port: int
    authority: str  # as sent (for the Host header upstream)
    forward: bytes  # CONNECT: b""; else the rewritten request head


def _split_authority(text: str, *, default_port: int | None) -> tuple[str, int, str]:
    if "@" in text:
        raise Refused(400, "userinfo in the request target")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise Refused(400, "malformed host")
        host_part, rest = text[: end + 1], text[end + 1 :]
    else:
        host_part, sep, port_text = text.rpartition(":")
        if not sep:
            host_part, rest = text, ""
        else:
            rest = ":" + port_text
    if rest:
        digits = rest[1:]
        if not rest.startswith(":") or not digits.isascii() or not digits.isdigit():
            raise Refused(400, "malformed port")
        if len(digits) > 5 or int(digits) == 0 or int(digits) > 65535:
            raise Refused(400, "port out of range")
        port = int(digits)
    elif default_port is None:
        raise Refused(400, "CONNECT needs host:port")
    else:
        port = default_port
    host = normalise_host(host_part)
    if host is None or (":" in host and not host_part.startswith("[")):
        raise Refused(400, "malformed host")
    return host, port, text


def parse_head(head: bytes) -> Request:
    """The checked request; raises Refused for anything but the two forms a git client sends."""
    lines = head.split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise Refused(400, "bare CR or LF in the request head")
    parts = lines[0].split(b" ")
    if (
        len(parts) != 3
        or not all(parts)
        or not all(0x21 <= c <= 0x7E for c in lines[0] if c != 0x20)
    ):
        raise Refused(400, "malformed request line")
    raw_method, raw_target, version = parts
    if (
        version not in (b"HTTP/1.0", b"HTTP/1.1")
        or not raw_method.isalpha()
        or len(raw_method) > 16
    ):
        raise Refused(400, "malformed request line")
    method, target = raw_method.decode("ascii"), raw_target.decode("ascii")
    headers = _parse_headers(lines[1:])
    hosts = [value for name, value in headers if name.lower() == b"host"]
    names = {name.lower() for name, _ in headers}
    if len(hosts) > 1:
        raise Refused(400, "more than one Host header")
    if b"transfer-encoding" in names and b"content-length" in names:
        raise Refused(400, "both Transfer-Encoding and Content-Length")
    if method == "CONNECT":
        host, port, authority = _split_authority(target, default_port=None)
        forward = b""
    else:
        if not target[:7].lower() == "http://":
            raise Refused(400, "only CONNECT and absolute-form http:// requests are proxied")
        rest = target[7:]
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        if "#" in rest:
            raise Refused(400, "fragment in the request target")
        host, port, authority = _split_authority(rest[:cut], default_port=80)
        path = rest[cut:] or "/"
        if path.startswith("?"):
            path = "/" + path
        kept = [f"{method} {path} ".encode("ascii") + version]
        kept += [
            name + b": " + value for name, value in headers if name.lower().decode() not in _DROPPED
        ]
        kept += [f"Host: {authority}".encode("ascii"), b"Connection: close", b"", b""]
        forward = b"\r\n".join(kept)
    if hosts:
        # closes: a request whose Host names another origin than its target (ambiguous origin)
        try:
            named_host, named_port, _ = _split_authority(
                hosts[0].decode("ascii"), default_port=80 if method != "CONNECT" else port
            )
        except (Refused, UnicodeDecodeError):
            raise Refused(400, "malformed Host header") from None
        if (named_host, named_port) != (host, port):
            raise Refused(400, "Host header disagrees with the request target")
    return Request(method, host, port, authority, forward)


def _parse_headers(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for line in lines:
        if not line:
            continue  # the empty lines that end the head
        if len(headers) >= MAX_HEADERS:
            raise Refused(431, "too many header fields")
        if line[:1] in (b" ", b"\t"):
            raise Refused(400, "obsolete line folding")
        name, sep, value = line.partition(b":")
        if not sep or not name or not set(name) <= _TCHAR or b"\0" in value:
            raise Refused(400, "malformed header field")
        headers.append((name, value.strip(b" \t")))
    return headers


def response(status: int, reason: str) -> bytes:
    body = f"auto-review egress proxy: {reason}\n".encode("ascii", "replace")
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii") + body

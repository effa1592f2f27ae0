"""Red-team probes written in Python: each subcommand attempts one attack and prints one JSON line.

Run with the test's own interpreter as ``python -I -S pyprobe.py ATTACK ARGS...``; only the
standard library is used, so it runs wherever the interpreter itself is visible. ``ok`` means the
attack worked; ``errno`` names the error so a test can tell which control stopped it (EACCES from
Landlock, EPERM from seccomp, ENOENT from a filesystem view without the path, ...). Every loop is
bounded by an argument; nothing here can outlive its bound.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import resource
import signal
import socket
import sys
import time

__all__ = ["main"]


def _emit(attack: str, *, ok: bool, err: int | None = None, **extra: object) -> None:
    line = {"probe": "pyprobe", "attack": attack, "ok": ok, "errno": _errname(err), **extra}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _errname(err: int | None) -> str:
    return errno.errorcode.get(err, str(err)) if err else ""


def read(path: str, marker: str = "") -> None:
    """Read a file (host secret, symlink target); reports the size and whether MARKER occurs,
    never the content."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 20)
    except OSError as exc:
        _emit("read", ok=False, err=exc.errno, path=path)
    else:
        contains = bool(marker) and marker.encode() in data
        _emit("read", ok=True, path=path, size=len(data), contains=contains)


def listdir(path: str) -> None:
    """List a directory (/sys/class/net, /proc); reports the names."""
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        _emit("listdir", ok=False, err=exc.errno, path=path)
    else:
        _emit("listdir", ok=True, path=path, names=names[:200])


def write(path: str) -> None:
    """Create or overwrite a file outside the writable area."""
    try:
        with open(path, "wb") as fh:
            fh.write(b"ar-redteam was here\n")
    except OSError as exc:
        _emit("write", ok=False, err=exc.errno, path=path)
    else:
        _emit("write", ok=True, path=path)


def fillmany(directory: str, max_mib: str, file_mib: str) -> None:
    """Write files of FILE_MIB each (below any per-file limit) until an error or MAX_MIB in
    total; removes them after."""
    chunk = b"\xa5" * (1 << 20)
    written, err, paths = 0, None, []
    try:
        while written < int(max_mib):
            path = os.path.join(directory, f"ar-redteam-fill-{len(paths)}")
            paths.append(path)
            with open(path, "wb", buffering=0) as fh:
                for _ in range(int(file_mib)):
                    fh.write(chunk)
                    written += 1
    except OSError as exc:
        err = exc.errno
    finally:
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
    _emit("fillmany", ok=err is None, err=err, mib=written, max=int(max_mib), files=len(paths))


def fillwait(directory: str, mib: str, seconds: str) -> None:
    """Write MIB MiB, create DIRECTORY/ready, then wait (at most SECONDS) for DIRECTORY/go: the
    test's own writes happen meanwhile. Removes what it wrote after."""
    path = os.path.join(directory, "ar-redteam-fill")
    waited, err = 0.0, None
    try:
        with open(path, "wb", buffering=0) as fh:
            for _ in range(int(mib)):
                fh.write(b"\xa5" * (1 << 20))
        with open(os.path.join(directory, "ready"), "wb"):
            pass
        began = time.monotonic()
        while not os.path.exists(os.path.join(directory, "go")):
            if time.monotonic() - began > float(seconds):
                break
            time.sleep(0.01)
        waited = time.monotonic() - began
    except OSError as exc:
        err = exc.errno
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    went = os.path.exists(os.path.join(directory, "go"))
    _emit("fillwait", ok=err is None and went, err=err, mib=int(mib), waited=round(waited, 2))


def fillunlinked(directory: str, max_mib: str) -> None:
    """Write up to MAX_MIB MiB into a file unlinked right after it was opened (the space stays
    allocated while the fd is open, but no name leads to it)."""
    written, err = 0, None
    path = os.path.join(directory, "ar-redteam-unlinked")
    try:
        with open(path, "wb", buffering=0) as fh:
            os.unlink(path)
            while written < int(max_mib):
                fh.write(b"\xa5" * (1 << 20))
                written += 1
    except OSError as exc:
        err = exc.errno
    _emit("fillunlinked", ok=err is None, err=err, mib=written, max=int(max_mib))


def fillhidden(directory: str, max_mib: str, file_mib: str) -> None:
    """Write files of FILE_MIB each into DIRECTORY/locked, which is mode 000 (unreadable to
    a walk) except while each file is written, until an error or MAX_MIB in total; removes
    them after."""
    locked = os.path.join(directory, "locked")
    written, err, files = 0, None, 0
    try:
        os.mkdir(locked, 0o000)
        while written < int(max_mib):
            os.chmod(locked, 0o700)
            with open(os.path.join(locked, f"f{files}"), "wb", buffering=0) as fh:
                os.chmod(locked, 0o000)  # the fd stays writable
                files += 1
                for _ in range(int(file_mib)):
                    fh.write(b"\xa5" * (1 << 20))
                    written += 1
    except OSError as exc:
        err = exc.errno
    finally:
        with contextlib.suppress(OSError):
            os.chmod(locked, 0o700)
            for name in os.listdir(locked):
                os.unlink(os.path.join(locked, name))
            os.rmdir(locked)
    _emit("fillhidden", ok=err is None, err=err, mib=written, max=int(max_mib), files=files)


def fallocate(directory: str, files: str, file_mib: str) -> None:
    """Reserve FILES files of FILE_MIB each with fallocate(2) (no data written: the kernel
    allocates extents at hundreds of GiB/s, faster than any poll); removes them after."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    done, err, paths = 0, None, []
    try:
        for n in range(int(files)):
            path = os.path.join(directory, f"ar-redteam-falloc-{n}")
            paths.append(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if libc.fallocate(fd, 0, 0, int(file_mib) << 20) != 0:
                    err = ctypes.get_errno()
                    break
            finally:
                os.close(fd)
            done += int(file_mib)
    finally:
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
    _emit("fallocate", ok=err is None, err=err, mib=done)


def symlink(target: str, link: str) -> None:
    """Create LINK pointing at TARGET (which need not exist here: the host resolves it later)."""
    try:
        os.symlink(target, link)
    except OSError as exc:
        _emit("symlink", ok=False, err=exc.errno, link=link)
    else:
        _emit("symlink", ok=True, link=link)


def dropexec(source: str, directory: str, how: str = "exec") -> None:
    """Drop a copy of the executable SOURCE into DIRECTORY and run it, directly (``exec``),
    through the dynamic loader (``ldso``, which only needs mmap(PROT_EXEC), not execve), or from
    a memfd instead of DIRECTORY (``memfd``: fexecve, no file system of the job's at all)."""
    payload = os.path.join(directory, "ar-redteam-payload")
    try:
        with open(source, "rb") as src:
            data = src.read()
        if how == "memfd":
            memfd = os.memfd_create("ar-redteam-payload", 0)
            os.write(memfd, data)
        else:
            with open(payload, "wb") as dst:
                dst.write(data)
            os.chmod(payload, 0o700)
    except OSError as exc:
        _emit("dropexec", ok=False, err=exc.errno, stage="drop")
        return
    loader = (
        "/lib64/ld-linux-x86-64.so.2"
        if platform.machine() == "x86_64"
        else ("/lib/ld-linux-aarch64.so.1")
    )
    argv = [loader, payload] if how == "ldso" else [payload]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        try:
            if how == "memfd":
                os.execve(memfd, ["ar-redteam-payload"], {})  # noqa: S606 - fexecve
            os.execv(argv[0], argv)  # noqa: S606 - the payload is the attack
        except OSError as exc:
            os.write(1, f"EXECFAIL {exc.errno}".encode())
        os._exit(127)
    os.close(write_end)
    output = b""
    while chunk := os.read(read_end, 4096):
        output += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        os.unlink(payload)
    ran = b'"probe":"euid"' in output
    if output.startswith(b"EXECFAIL "):
        _emit("dropexec", ok=False, err=int(output.split()[1]), how=how)
    else:
        _emit("dropexec", ok=ran, how=how, output=output.decode(errors="replace")[-200:])


def scratchtrap(directory: str, depth: str) -> None:
    """Shape DIRECTORY ('' = $TMPDIR) against whoever removes it later: a mode-000 directory
    holding a file, and a chain of DEPTH nested directories (made a level at a time, so no path
    is ever long). Reports the directory."""
    top = directory or os.environ["TMPDIR"]
    locked = os.path.join(top, "locked")
    os.mkdir(locked)
    with open(os.path.join(locked, "payload"), "wb") as fh:
        fh.write(b"left behind\n" * 4096)
    os.chmod(locked, 0)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(int(depth)):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    _emit("scratchtrap", ok=True, directory=top)


def fill(directory: str, max_mib: str) -> None:
    """Write 1 MiB chunks into one file until an error or MAX_MIB; removes the file after."""
    path = os.path.join(directory, "ar-redteam-fill")
    chunk = b"\xa5" * (1 << 20)
    written, err = 0, None
    try:
        with open(path, "wb", buffering=0) as fh:
            while written < int(max_mib):
                fh.write(chunk)  # a short write past the cap raises on the next call
                written += 1
            os.fsync(fh.fileno())
    except OSError as exc:
        err = exc.errno
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    _emit("fill", ok=err is None, err=err, mib=written, max=int(max_mib))


def _tcp(host: str, port: int, family: int) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect((host, port))
        sock.sendall(b"ar-redteam tcp\n")
        reply = sock.recv(64)
    _emit("tcp", ok=reply.startswith(b"ack"), host=host, port=port)


def tcp(host: str, port: str) -> None:
    """Connect over TCP to a host listener and get its acknowledgement."""
    try:
        _tcp(host, int(port), socket.AF_INET6 if ":" in host else socket.AF_INET)
    except TimeoutError:
        _emit("tcp", ok=False, err=errno.ETIMEDOUT, host=host, port=int(port))
    except OSError as exc:
        _emit("tcp", ok=False, err=exc.errno, host=host, port=int(port))


def _proxy_request(mode: str, host: str, port: int, pad: int, host_header: str) -> bytes:
    authority = f"{host}:{port}"
    if mode == "connect":
        line = f"CONNECT {authority} HTTP/1.1"
    elif mode == "absolute":
        line = f"GET http://{authority}/ HTTP/1.1"
    else:
        raise ValueError(f"mode {mode!r}: connect or absolute")
    headers = [f"Host: {host_header or authority}", "User-Agent: ar-redteam"]
    if pad:
        headers.append("X-Pad: " + "a" * pad)
    return ("\r\n".join([line, *headers]) + "\r\n\r\n").encode()


def proxy(mode: str, host: str, port: str, pad: str = "0", host_header: str = "") -> None:
    """Ask the egress proxy named by $http_proxy to reach HOST:PORT (CONNECT, or an
    absolute-form GET; PAD bytes of extra header; HOST_HEADER overrides Host), then say hello
    to the listener there. Reports the proxy's status code and whether the listener acked."""
    proxy_url = os.environ.get("http_proxy", "")
    proxy_host, _, proxy_port = proxy_url.removeprefix("http://").rstrip("/").rpartition(":")
    if not proxy_host:
        _emit("proxy", ok=False, err=errno.EINVAL, detail="no http_proxy in the environment")
        return
    try:
        with socket.create_connection((proxy_host, int(proxy_port)), timeout=15) as sock:
            sock.sendall(_proxy_request(mode, host, int(port), int(pad), host_header))
            reply = b""
            while b"\r\n\r\n" not in reply and len(reply) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/1.") else ""
            if mode == "connect" and status == "200":
                sock.sendall(b"ar-redteam tcp\n")
                reply = sock.recv(64)
            elif status == "":
                reply += sock.recv(64)
    except TimeoutError:
        _emit("proxy", ok=False, err=errno.ETIMEDOUT, mode=mode)
    except OSError as exc:
        _emit("proxy", ok=False, err=exc.errno, mode=mode)
    else:
        acked = reply.startswith(b"ack")
        _emit("proxy", ok=acked, mode=mode, status=status, host=host, port=int(port))


def bind(host: str, port: str) -> None:
    """Listen on HOST:PORT over TCP (a job opening a service port the policy did not grant)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
            sock.listen(1)
    except OSError as exc:
        _emit("bind", ok=False, err=exc.errno, host=host, port=int(port))
    else:
        _emit("bind", ok=True, host=host, port=int(port))


def udp(host: str, port: str, payload: str = "ar-redteam udp") -> None:
    """Send a datagram to a host listener and wait (bounded) for its reply."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.sendto(payload.encode(), (host, int(port)))
            reply, _ = sock.recvfrom(512)
    except TimeoutError:
        _emit("udp", ok=False, err=errno.ETIMEDOUT, host=host, port=int(port))
    except OSError as exc:
        _emit("udp", ok=False, err=exc.errno, host=host, port=int(port))
    else:
        _emit("udp", ok=reply.startswith(b"ack"), host=host, port=int(port))


def dns(host: str, port: str, name: str) -> None:
    """Resolve NAME by sending a DNS query (RFC 1035 wire format) to a resolver at HOST:PORT."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x01\x00\x01"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.sendto(query, (host, int(port)))
            reply, _ = sock.recvfrom(512)
    except TimeoutError:
        _emit("dns", ok=False, err=errno.ETIMEDOUT, name=name)
    except OSError as exc:
        _emit("dns", ok=False, err=exc.errno, name=name)
    else:
        # An answer to our id with at least one answer record.
        answered = reply[:2] == b"\x12\x34" and int.from_bytes(reply[6:8], "big") > 0
        _emit("dns", ok=answered, name=name)


def unix(address: str) -> None:
    """Connect to a unix socket: a path, or an abstract name written as '@name'."""
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(target)
            sock.sendall(b"ar-redteam unix\n")
            reply = sock.recv(64)
    except TimeoutError:
        _emit("unix", ok=False, err=errno.ETIMEDOUT, address=address)
    except OSError as exc:
        _emit("unix", ok=False, err=exc.errno, address=address)
    else:
        _emit("unix", ok=reply.startswith(b"ack"), address=address)


def socketpair() -> None:
    """Create a unix socketpair and pass a byte through it (positive control for AF_UNIX)."""
    try:
        left, right = socket.socketpair()
        with left, right:
            left.sendall(b"x")
            ok = right.recv(1) == b"x"
    except OSError as exc:
        _emit("socketpair", ok=False, err=exc.errno)
    else:
        _emit("socketpair", ok=ok)


_FAMILIES = {
    "netlink": (socket.AF_NETLINK, socket.SOCK_RAW, 0),  # NETLINK_ROUTE
    "packet": (socket.AF_PACKET, socket.SOCK_RAW, 0),
    "alg": (38, socket.SOCK_SEQPACKET, 0),  # AF_ALG
    "vsock": (40, socket.SOCK_STREAM, 0),  # AF_VSOCK
    "inet_raw": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
    "inet": (socket.AF_INET, socket.SOCK_STREAM, 0),
    "inet6": (socket.AF_INET6, socket.SOCK_STREAM, 0),
    "unix": (socket.AF_UNIX, socket.SOCK_STREAM, 0),
}


def family(name: str, userns: str = "") -> None:
    """Open a socket of a family the sandbox should not offer (netlink, packet, alg, vsock...).

    With ``--userns`` the probe first enters new user+net namespaces so an unprivileged control
    holds CAP_NET_RAW there (packet and raw sockets need it).
    """
    extra: dict[str, object] = {}
    if userns == "--userns":
        extra["userns"] = _unshare(0x10000000 | 0x40000000)  # CLONE_NEWUSER | CLONE_NEWNET
    fam, kind, proto = _FAMILIES[name]
    try:
        socket.socket(fam, kind, proto).close()
    except OSError as exc:
        _emit("family", ok=False, err=exc.errno, family=name, **extra)
    else:
        _emit("family", ok=True, family=name, **extra)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> str:
    libc = _libc()
    if libc.unshare(ctypes.c_int(flags)) == 0:
        return "ok"
    return _errname(ctypes.get_errno())


def kill(pid: str, sig: str) -> None:
    """Send signal SIG to PID (a host process, the parent, or -1 for everyone we may signal)."""
    try:
        os.kill(int(pid), int(sig))
    except OSError as exc:
        _emit("kill", ok=False, err=exc.errno, pid=int(pid), sig=int(sig))
    else:
        _emit("kill", ok=True, pid=int(pid), sig=int(sig))


def killparent() -> None:
    """Probe whether the parent (supervisor or launcher) can be signalled (signal 0: no harm)."""
    kill(str(os.getppid()), "0")


def env(marker: str) -> None:
    """Report the environment's names and whether any value holds MARKER (a planted secret)."""
    leaked = sorted(k for k, v in os.environ.items() if marker in v or marker in k)
    _emit("env", ok=bool(leaked), names=sorted(os.environ), leaked=leaked)


def status() -> None:
    """Report the security fields of /proc/self/status and this process's namespace ids."""
    fields: dict[str, str] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in {
                "NoNewPrivs",
                "Seccomp",
                "Seccomp_filters",
                "CapEff",
                "CapPrm",
                "CapInh",
                "CapBnd",
                "CapAmb",
                "Uid",
                "Gid",
                "Groups",
            }:
                fields[key] = value.strip()
    namespaces = {}
    for ns in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup"):
        try:
            namespaces[ns] = os.readlink(f"/proc/self/ns/{ns}")
        except OSError as exc:
            namespaces[ns] = _errname(exc.errno)
    try:
        with open("/proc/self/uid_map") as fh:
            uid_map = [line.split() for line in fh]
    except OSError:
        uid_map = []
    limits = {}
    for name in (
        "RLIMIT_CPU",
        "RLIMIT_AS",
        "RLIMIT_FSIZE",
        "RLIMIT_NOFILE",
        "RLIMIT_NPROC",
        "RLIMIT_CORE",
    ):
        limits[name] = resource.getrlimit(getattr(resource, name))[0]
    try:
        tmp = os.statvfs("/tmp")
        tmp_bytes = tmp.f_blocks * tmp.f_frsize
    except OSError:
        tmp_bytes = -1
    _emit(
        "status",
        ok=True,
        status=fields,
        ns=namespaces,
        uid_map=uid_map,
        rlimits=limits,
        tmp_bytes=tmp_bytes,
        pid=os.getpid(),
        ppid=os.getppid(),
    )


def selfcheck() -> None:
    """Report no_new_privs, seccomp mode and effective capabilities without reading /proc
    (prctl and capget), for tiers where /proc is out of bounds."""
    libc = _libc()
    libc.prctl.restype = ctypes.c_int
    nnp = libc.prctl(ctypes.c_int(39), 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
    mode = libc.prctl(ctypes.c_int(21), 0, 0, 0, 0)  # PR_GET_SECCOMP
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # two struct __user_cap_data_struct {effective, permitted, ...}
    capget = {"x86_64": 125, "aarch64": 90}[platform.machine()]
    rc = libc.syscall(ctypes.c_long(capget), header, data)
    cap_eff = (data[3] << 32) | data[0] if rc == 0 else -1
    _emit("selfcheck", ok=True, no_new_privs=nnp, seccomp=mode, cap_eff=cap_eff)


def fds(number: str) -> None:
    """List open fds and try to use fd NUMBER (inherited from the host) as a directory."""
    try:
        open_fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = []
    fd = int(number)
    try:
        os.fchdir(fd)
        names = os.listdir(".")
    except OSError as exc:
        _emit("fds", ok=False, err=exc.errno, fd=fd, fds=open_fds)
    else:
        _emit("fds", ok=True, fd=fd, fds=open_fds, names=sorted(names)[:20])


def daemon(token: str, seconds: str) -> None:
    """Double-fork a session leader that sleeps SECONDS (bounded) with TOKEN in its argv."""
    del token  # it is in argv, which is how the host finds the survivor
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.close(read_end)
            os.write(write_end, str(os.getpid()).encode())
            os.close(write_end)
            for fd in (0, 1, 2):  # let the launcher see EOF on our pipes
                os.close(fd)
            time.sleep(float(seconds))
            os._exit(0)
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    grandchild = os.read(read_end, 32).decode()
    _emit("daemon", ok=bool(grandchild), pid=int(grandchild or 0))


def linger(token: str, seconds: str) -> None:
    """Double-fork a daemon (TOKEN in argv) and stay alive SECONDS (bounded) ourselves."""
    daemon(token, seconds)
    time.sleep(float(seconds))
    _emit("linger", ok=True)


def inject_stdin(high_bits: str = "") -> None:
    """Type a byte into the terminal on fd 0 with TIOCSTI (after trying to make it our
    controlling terminal with TIOCSCTTY); --high-bits sets bit 32 of the request."""
    libc = _libc()
    libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
    ctty = libc.ioctl(0, 0x540E, None)  # TIOCSCTTY, arg 0: do not steal
    ctty_err = _errname(ctypes.get_errno()) if ctty != 0 else "ok"
    request = 0x5412 | ((1 << 32) if high_bits == "--high-bits" else 0)  # TIOCSTI
    byte = ctypes.c_char(b"Z")
    if libc.ioctl(0, request, ctypes.addressof(byte)) != 0:
        _emit("inject_stdin", ok=False, err=ctypes.get_errno(), ctty=ctty_err)
    else:
        _emit("inject_stdin", ok=True, ctty=ctty_err)


def spin(seconds: str) -> None:
    """Burn CPU for SECONDS (bounded), then report that we were allowed to finish."""
    end = time.monotonic() + float(seconds)
    n = 0
    while time.monotonic() < end:
        n += 1
    _emit("spin", ok=True, seconds=float(seconds))


def shm(key: str) -> None:
    """Look up a SysV shared memory segment by KEY (created by the host)."""
    libc = _libc()
    shmid = libc.shmget(ctypes.c_int(int(key)), ctypes.c_size_t(0), ctypes.c_int(0))
    if shmid < 0:
        _emit("shm", ok=False, err=ctypes.get_errno(), key=int(key))
    else:
        _emit("shm", ok=True, key=int(key), shmid=shmid)


def hostname(host_uts: str, userns: str = "") -> None:
    """Try to change the hostname, only ever outside the host's uts namespace HOST_UTS (the
    test passes its own /proc/self/ns/uts); --userns first enters new user+uts namespaces."""
    extra: dict[str, object] = {"before": socket.gethostname()}
    if userns == "--userns":
        extra["userns"] = _unshare(0x10000000 | 0x04000000)  # CLONE_NEWUSER | CLONE_NEWUTS
    if os.readlink("/proc/self/ns/uts") == host_uts:
        # Never rename the host: in the host's uts namespace the attempt is skipped.
        _emit("hostname", ok=False, err=errno.ECANCELED, **extra)
        return
    name = b"ar-redteam"
    libc = _libc()
    if libc.sethostname(name, ctypes.c_size_t(len(name))) != 0:
        _emit("hostname", ok=False, err=ctypes.get_errno(), **extra)
    else:
        _emit("hostname", ok=True, after=socket.gethostname(), **extra)


def signal_ignored() -> None:
    """Positive control helper: report that the probe runs (pid, ppid) without doing anything."""
    _emit(
        "alive",
        ok=True,
        pid=os.getpid(),
        ppid=os.getppid(),
        sigxfsz=str(signal.getsignal(signal.SIGXFSZ)),
    )


_ATTACKS = {
    "read": read,
    "listdir": listdir,
    "write": write,
    "symlink": symlink,
    "fillmany": fillmany,
    "fallocate": fallocate,
    "fillwait": fillwait,
    "fillunlinked": fillunlinked,
    "fillhidden": fillhidden,
    "dropexec": dropexec,
    "fill": fill,
    "scratchtrap": scratchtrap,
    "tcp": tcp,
    "proxy": proxy,
    "bind": bind,
    "udp": udp,
    "dns": dns,
    "unix": unix,
    "socketpair": socketpair,
    "family": family,
    "kill": kill,
    "killparent": killparent,
    "env": env,
    "status": status,
    "selfcheck": selfcheck,
    "fds": fds,
    "daemon": daemon,
    "linger": linger,
    "inject_stdin": inject_stdin,
    "spin": spin,
    "shm": shm,
    "hostname": hostname,
    "alive": signal_ignored,
}


def main(argv: list[str]) -> int:
    """Run the attack named by argv[0] with the rest as its arguments."""
    if not argv or argv[0] not in _ATTACKS:
        sys.stderr.write(f"usage: pyprobe.py {{{','.join(_ATTACKS)}}} ARGS...\n")
        return 2
    _ATTACKS[argv[0]](*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

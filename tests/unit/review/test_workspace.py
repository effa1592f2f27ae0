from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.review._git import git, make_repo
from tests.unit.review._githttp import GitServer, serve_git
from tests.unit.sandbox._helpers import require

from auto_review.review import workspace
from auto_review.review._isolation import CommandResult
from auto_review.review.workspace import WorkspaceError, clone_workspace
from auto_review.sandbox import Tier, _proxy, remove_tree
from auto_review.sandbox.egress import EgressProxy

TOKEN = "tok-" + "s3cr3t" * 6
AUTH = "Authorization: Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()


def _hostile_repo(tmp_path: Path) -> tuple[Path, str]:
    work = make_repo(
        tmp_path / "work",
        {
            "src/app.py": "print('hi')\n",
            ".gitmodules": '[submodule "x"]\n\tpath = x\n\turl = file:///etc\n',
        },
    )
    os.symlink("/etc/passwd", work / "passwd")
    os.symlink(".git/config", work / "cfg")
    with (work / "huge.bin").open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # compresses to almost nothing in the pack
    for i in range(20):  # 2 MiB of tree, a few bytes of pack
        (work / "zeros").mkdir(exist_ok=True)
        (work / "zeros" / f"z{i}.bin").write_bytes(bytes(100 * 1024))
    deep = work
    for i in range(60):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_text("deep\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "hostile")
    sha = git(work, "rev-parse", "HEAD").strip()
    bare = tmp_path / "srv" / "o" / "r.git"
    bare.parent.mkdir(parents=True)
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
    return bare, sha


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GitServer, str]]:
    _, sha = _hostile_repo(tmp_path)
    expected = "Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()
    with serve_git(tmp_path / "srv", required_auth=expected) as server:
        yield server, sha


def test_clone_workspace_checks_out_head_and_keeps_token_out_of_every_file(
    served: tuple[GitServer, str], tmp_path: Path
) -> None:
    server, sha = served
    ws = clone_workspace(
        clone_url=f"{server.url}/o/r.git",
        auth_header=AUTH,
        head_sha=sha,
        parent=tmp_path,
        timeout=60,
        max_bytes=32 * 1024 * 1024,
    )
    try:
        assert ws.lines("src/app.py") == ["print('hi')"]
        assert os.path.islink(ws.root / "passwd")  # kept as a link ...
        assert ws.lines("passwd") is None  # ... but never followed
        assert ws.lines("cfg") is None
        assert ws.excluded == ("huge.bin",)  # larger than the per-file cap: not checked out
        assert not (ws.root / "huge.bin").exists()
        assert not (ws.root / "x" / "passwd").exists()  # the file:// submodule was not fetched
        leaked = [
            p
            for p in ws.root.parent.rglob("*")
            if p.is_file() and not p.is_symlink() and TOKEN.encode() in p.read_bytes()
        ]
        assert leaked == []
        assert any(a and a.startswith("Basic ") for a in server.auth_seen)
        assert ws.egress_refusals == ()
    finally:
        ws.close()
    assert not ws.root.exists()


def test_clone_workspace_refuses_without_credentials_positive_control(
    served: tuple[GitServer, str], tmp_path: Path
) -> None:
    server, sha = served
    with pytest.raises(WorkspaceError, match="fetch failed") as caught:
        clone_workspace(
            clone_url=f"{server.url}/o/r.git",
            auth_header=None,
            head_sha=sha,
            parent=tmp_path,
            timeout=60,
            max_bytes=32 * 1024 * 1024,
        )
    # What git said reaches the operator (detail, logged), not the PR note (message): a
    # subverted git holding the token could write it there in any encoding.
    assert caught.value.message == "git fetch failed (exit 128)"
    assert caught.value.detail.startswith("fatal: could not read Username")


@pytest.mark.parametrize("sha", ["--upload-pack=touch /tmp/x", "HEAD", "abc", "A" * 40])
def test_clone_workspace_refuses_non_hex_sha_before_running_git(sha: str, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="hexadecimal"):
        clone_workspace(
            clone_url="http://127.0.0.1:9/o/r.git",
            auth_header=None,
            head_sha=sha,
            parent=tmp_path,
            timeout=5,
            max_bytes=1 << 20,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["file:///etc", "ext::sh -c touch% /tmp/x", "ssh://h/r.git"])
def test_clone_workspace_refuses_non_http_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="http"):
        clone_workspace(
            clone_url=url,
            auth_header=None,
            head_sha="a" * 40,
            parent=tmp_path,
            timeout=5,
            max_bytes=1 << 20,
        )


def test_clone_workspace_refuses_tree_larger_than_max_bytes(
    served: tuple[GitServer, str], tmp_path: Path
) -> None:
    server, sha = served
    with pytest.raises(WorkspaceError, match="larger than"):
        clone_workspace(
            clone_url=f"{server.url}/o/r.git",
            auth_header=AUTH,
            head_sha=sha,
            parent=tmp_path,
            timeout=60,
            max_bytes=1024 * 1024,
        )


def _write_zero_blob(bare: Path, size: int) -> str:
    """Write a loose blob of ``size`` zero bytes into ``bare`` without materialising it."""
    import hashlib
    import zlib

    header = f"blob {size}\0".encode()
    chunk = bytes(1 << 20)
    digest = hashlib.sha1(header)  # noqa: S324 (git object ids are SHA-1)
    for _ in range(size // len(chunk)):
        digest.update(chunk)
    sha = digest.hexdigest()
    target = bare / "objects" / sha[:2] / sha[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    deflate = zlib.compressobj(1)
    with target.open("wb") as fh:
        fh.write(deflate.compress(header))
        for _ in range(size // len(chunk)):
            fh.write(deflate.compress(chunk))
        fh.write(deflate.flush())
    return sha


@pytest.mark.slow
def test_clone_workspace_survives_a_2_gib_sparse_file_without_writing_it(tmp_path: Path) -> None:
    """Attack: a 2 GiB all-zero blob (a few MiB on the wire) meant to fill the host's disk.
    Control: per-file sparse exclusion plus RLIMIT_FSIZE; the checkout never holds it."""
    bare = tmp_path / "srv" / "o" / "r.git"
    bare.parent.mkdir(parents=True)
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
    big = _write_zero_blob(bare, 2 * 1024**3)
    small = git(bare, "hash-object", "-w", "--stdin", input_text="print('ok')\n").strip()
    tree = git(
        bare, "mktree", input_text=f"100644 blob {big}\tdisk.img\n100644 blob {small}\tapp.py\n"
    ).strip()
    sha = git(bare, "commit-tree", tree, "-m", "big").strip()
    with serve_git(tmp_path / "srv") as server:
        ws = clone_workspace(
            clone_url=f"{server.url}/o/r.git", auth_header=None, head_sha=sha, parent=tmp_path,
            timeout=600, max_bytes=64 * 1024 * 1024,
        )  # fmt: skip
    try:
        assert ws.excluded == ("disk.img",)
        assert not (ws.root / "disk.img").exists()
        assert ws.lines("app.py") == ["print('ok')"]
        used = sum(p.stat().st_size for p in ws.root.rglob("*") if p.is_file())
        assert used < 64 * 1024 * 1024
    finally:
        ws.close()


def _steer(monkeypatch: pytest.MonkeyPatch, forge_url: str, elsewhere: str) -> None:
    """git goes to another origin than the clone URL's, as an exploited git holding the token
    would; here a url.insteadOf rule among the hardening flags sends it there."""
    rule = f"url.{elsewhere}/.insteadOf={forge_url}/"
    monkeypatch.setattr(workspace, "HARDENING", (*workspace.HARDENING, rule))


def test_clone_workspace_error_carries_the_other_origin_the_egress_proxy_refused(
    served: tuple[GitServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(Tier.FULL)  # the egress proxy is the full tier's
    server, sha = served
    decoy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    decoy.bind(("127.0.0.1", 0))
    decoy.listen(4)
    decoy_port = decoy.getsockname()[1]
    _steer(monkeypatch, server.url, f"http://127.0.0.1:{decoy_port}")
    try:
        with pytest.raises(WorkspaceError) as caught:
            clone_workspace(
                clone_url=f"{server.url}/o/r.git", auth_header=AUTH, head_sha=sha,
                parent=tmp_path, timeout=60, max_bytes=32 * 1024 * 1024,
            )  # fmt: skip
        decoy.setblocking(False)
        with pytest.raises(BlockingIOError):
            decoy.accept()  # nothing reached the other origin
    finally:
        decoy.close()
    # The PR note says what happened in our words; where git went is for the operator's log.
    assert caught.value.message == (
        "git fetch failed (exit 128): the sandbox refused the clone's connection to another host "
        "(not the forge's origin)"
    )
    assert [(r.status, r.destination) for r in caught.value.egress_refusals] == [
        (403, f"127.0.0.1:{decoy_port}")
    ]
    assert server.auth_seen == []  # the fetch never went to the forge either
    assert list(tmp_path.glob("ar-ws-*")) == []


@pytest.mark.parametrize("separator", [".", "-"], ids=["dots", "hyphens"])
@pytest.mark.parametrize(
    "auth_header", [AUTH, f"Authorization: token {TOKEN}"], ids=["basic", "token"]
)
def test_clone_workspace_withholds_a_refused_host_that_carries_the_credential(
    served: tuple[GitServer, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_header: str,
    separator: str,
) -> None:
    """Attack: an exploited git names the token as a host, so that the refusal carries it into
    the review note on the PR and the logs (whose redactor matches the token's exact value
    only). Control: a refused host that contains the credential (case, dots and hyphens, the
    separators a host name allows, ignored) is withheld."""
    require(Tier.FULL)
    server, sha = served
    port = server.url.rsplit(":", 1)[1]
    host = separator.join([TOKEN[:7], TOKEN[7:20], TOKEN[20:].upper(), "example"])
    _steer(monkeypatch, server.url, f"http://{host}:{port}")
    with pytest.raises(WorkspaceError) as caught:
        clone_workspace(
            clone_url=f"{server.url}/o/r.git", auth_header=auth_header, head_sha=sha,
            parent=tmp_path, timeout=60, max_bytes=32 * 1024 * 1024,
        )  # fmt: skip
    shown = f"{caught.value.message} {caught.value.egress_refusals}".lower()
    assert TOKEN.lower().replace("-", "") not in shown.replace(".", "").replace("-", "")
    [refusal] = set(caught.value.egress_refusals)
    assert refusal.destination == "(withheld: it contained the credential)"


def test_clone_workspace_withholds_a_hex_credential_spelt_as_a_refused_ipv6_literal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: a subverted git speaks to the egress proxy itself (no URL parser in the way) and
    asks for a hex credential's digits as an IPv6 address (up to 32 digits fit; the proxy
    refuses a longer "literal" as malformed, recording no destination), which the proxy
    refuses and records as the destination. Control: the refusal that reaches the operator's
    log is withheld, as for a name that spells the credential."""
    hexed = "0123456789abcdef" * 2  # 128 bits: one IPv6 address
    literal = ":".join(hexed[i : i + 4] for i in range(0, len(hexed), 4))
    proxy = EgressProxy(_listen_loopback(), (("127.0.0.1", 9),)).start()
    try:
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(f"CONNECT [{literal}]:443 HTTP/1.1\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 403 ")
    finally:
        refusals = _proxy.finish(proxy).refusals  # as the spawning side reports them
    assert refusals[0].destination == f"[{literal}]:443"  # what a subverted git can make

    def run_git(argv: list[str], **kwargs: object) -> CommandResult:
        if "fetch" in argv:
            return CommandResult(128, b"", b"", egress_refusals=refusals)
        return CommandResult(0, b"", b"")

    monkeypatch.setattr(workspace, "run_git", run_git)
    with pytest.raises(WorkspaceError) as caught:
        clone_workspace(
            clone_url="http://127.0.0.1:9/o/r.git", auth_header=f"Authorization: token {hexed}",
            head_sha="a" * 40, parent=tmp_path, timeout=60, max_bytes=1024 * 1024,
        )  # fmt: skip
    shown = f"{caught.value.message} {caught.value.detail} {caught.value.egress_refusals}"
    assert hexed not in shown.replace(":", "")
    [refusal] = caught.value.egress_refusals
    assert refusal.destination == "(withheld: it contained the credential)"


def _listen_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    return sock


def test_clone_workspace_names_the_sandbox_limit_that_stopped_git(
    served: tuple[GitServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step the sandbox stopped at one of its limits (the disk cap, say) is named in our own
    words on the PR, not as git's failure: git may have said nothing, or anything."""
    server, sha = served
    stopped = CommandResult(-25, b"", b"x" * 10, stopped_by="the job hit its disk cap")
    monkeypatch.setattr(workspace, "run_git", lambda *args, **kwargs: stopped)
    with pytest.raises(WorkspaceError) as caught:
        clone_workspace(
            clone_url=f"{server.url}/o/r.git", auth_header=AUTH, head_sha=sha,
            parent=tmp_path, timeout=60, max_bytes=32 * 1024 * 1024,
        )  # fmt: skip
    assert caught.value.message.endswith("was stopped: the job hit its disk cap")
    assert caught.value.detail == ""
    assert list(tmp_path.glob("ar-ws-*")) == []


def test_clone_workspace_of_a_tree_nested_1500_deep_is_removed_on_close(tmp_path: Path) -> None:
    """Attack: a PR whose tree nests directories 1500 deep (a 3000-character path, legal in
    git; no exploit needed). Removing the checkout with shutil.rmtree raised RecursionError out
    of Workspace.close (the review failed in its cleanup) and left the clone on disk for every
    such PR. Control: the sandbox's iterative removal; the host control shows the same tree
    defeating shutil.rmtree."""
    deep = Path(*(["d"] * 1500))
    control = tmp_path / "control"
    # mkdir -p: pathlib's and os.makedirs' own recursion would not reach that depth either
    subprocess.run(["mkdir", "-p", str(control / deep)], check=True)
    try:
        with contextlib.suppress(RecursionError):
            shutil.rmtree(control, ignore_errors=True)
        assert control.exists(), "control: shutil.rmtree removed the deep tree"
    finally:
        # pytest's own cleanup of old tmp dirs is shutil.rmtree too: a tree left here would
        # crash a later session's exit with RecursionError.
        assert remove_tree(str(control))
    work = make_repo(tmp_path / "work", {"a.txt": "x\n"})
    # Committed through the index: a working tree that deep needs more fds than git add has.
    blob = git(work, "hash-object", "-w", "--stdin", input_text="deep\n").strip()
    git(work, "update-index", "--add", "--cacheinfo", f"100644,{blob},{deep.as_posix()}/leaf")
    git(work, "commit", "-q", "-m", "deep")
    sha = git(work, "rev-parse", "HEAD").strip()
    bare = tmp_path / "srv" / "o" / "r.git"
    bare.parent.mkdir(parents=True)
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
    with serve_git(tmp_path / "srv") as server:
        ws = clone_workspace(
            clone_url=f"{server.url}/o/r.git",
            auth_header=None,
            head_sha=sha,
            parent=tmp_path,
            timeout=60,
            max_bytes=32 * 1024 * 1024,
        )
    assert (ws.root / deep / "leaf").exists()
    ws.close()
    assert not ws.root.parent.exists()

"""A read-only working copy of the PR head: hermetic, shallow, bounded, and token-free.

``clone_workspace`` validates the SHA as a full hex object id before any git runs (no argv
injection such as ``--upload-pack=``), then in a fresh directory runs ``git init`` without
templates, one shallow ``fetch`` of exactly that SHA, the review's diff (``_incremental``: from
the last reviewed head, else the whole PR's from the base commit), a size check of the tree, and
a checkout.
Every git process gets an environment built from nothing (so no ``GIT_*``, ``SSH_*`` or askpass
override can exist), no system or global config, a scrubbed empty ``HOME``, no prompts, no hooks,
only the http/https transports, no redirects (an auth header must not follow one to another
host), no submodules, and ``RLIMIT_FSIZE``. The forge credential reaches only the fetch, as an
``http.extraHeader`` passed through ``GIT_CONFIG_COUNT``/``KEY``/``VALUE`` in that command's
environment: never in argv (visible in ``ps``), never in ``.git/config``. Files larger than the
per-file cap are left out of the checkout (sparse), and a tree larger than ``max_bytes`` is
refused. Reads go through ``read_beneath``: symlinks in the checkout are kept but never followed.
What the sandbox's egress proxy refused git (full tier) is kept as ``egress_refusals`` on the
workspace or the error, and a failure names it; a refused host that contains the credential is
withheld.
"""

from __future__ import annotations

import base64
import contextlib
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from auto_review.errors import ReviewError
from auto_review.hosts import is_sha
from auto_review.review._fsconfine import read_beneath
from auto_review.review._incremental import SinceDiff, pr_diff, since_diff
from auto_review.review._isolation import CommandResult, IsolationError, Refusal, run_git
from auto_review.sandbox import remove_tree
from auto_review.settings import Isolation

__all__ = [
    "HARDENING",
    "Workspace",
    "WorkspaceError",
    "clone_workspace",
    "git_env",
    "local_workspace",
]

MAX_CHECKOUT_FILE = 16 * 1024 * 1024  # larger files are not checked out (nothing reads them)
MAX_READ_BYTES = 1024 * 1024
_MIN_FSIZE = 1024 * 1024
_NONE = SinceDiff(None)  # a diff not asked for

# Passed as -c to every git command; values chosen to close a specific door each.
HARDENING: tuple[str, ...] = (
    "core.hooksPath=/dev/null",  # a repository cannot bring hooks
    "core.fsmonitor=false",  # no fsmonitor command
    "core.symlinks=true",  # keep links as links; readers never follow them
    "protocol.allow=never",  # transports: only the two below
    "protocol.http.allow=always",
    "protocol.https.allow=always",
    "protocol.file.allow=never",  # .gitmodules pointing at file:// cannot read host repos
    "protocol.ext.allow=never",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "credential.helper=",  # no helper can run or store the credential
    "http.followRedirects=false",  # the auth header must not follow a redirect elsewhere
    "gc.auto=0",
    "maintenance.auto=false",
    "advice.detachedHead=false",
    "core.quotePath=false",
)


class WorkspaceError(ReviewError):
    """The workspace could not be prepared (refused SHA, failed fetch, oversized tree).

    ``message`` is our own text only: it becomes a note on the PR, where its author reads it.
    ``detail`` is what git said and ``egress_refusals`` what the sandbox's egress proxy refused
    git (with the destinations git asked for): both are chosen by git, which a hostile
    repository may have subverted while it held the forge token, so they go to the operator's
    log, never to the PR."""

    def __init__(
        self, message: str, *, egress_refusals: tuple[Refusal, ...] = (), detail: str = ""
    ) -> None:
        super().__init__(message)
        self.egress_refusals = egress_refusals
        self.detail = detail


def git_env(home: Path) -> dict[str, str]:
    """The whole environment of a git child: built from nothing, so no override survives."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "http:https",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "LC_ALL": "C",
    }


@dataclass
class Workspace:
    """A checkout at ``head_sha``; ``excluded`` files were too large to check out;
    ``egress_refusals``: what the egress proxy refused git although the clone succeeded;
    ``since_diff``: the incremental diff asked for (None: not asked, or ``since_failure``);
    ``pr_diff``: the whole PR's diff, when there is no ``since_diff`` (None: ``pr_diff_failure``);
    ``tree``: each path's object id at ``head_sha`` (empty for a local checkout)."""

    root: Path
    head_sha: str
    excluded: tuple[str, ...] = ()
    egress_refusals: tuple[Refusal, ...] = ()
    since_diff: str | None = None
    since_failure: str = ""
    pr_diff: str | None = None
    pr_diff_failure: str = ""
    tree: Mapping[str, str] = field(default_factory=dict)
    _owned_dir: Path | None = None
    _lines: dict[str, list[str] | None] = field(default_factory=dict)

    def read_bytes(self, rel: str, max_bytes: int = MAX_READ_BYTES) -> bytes | None:
        read = read_beneath(self.root, rel, max_bytes=max_bytes)
        return None if read is None or read.truncated else read.data

    def lines(self, rel: str) -> list[str] | None:
        """The file's text lines (UTF-8, replacement for bad bytes); None if unreadable."""
        if rel not in self._lines:
            data = self.read_bytes(rel)
            self._lines[rel] = None if data is None else data.decode("utf-8", "replace").split("\n")
            if data is not None and data.endswith(b"\n"):
                lines = self._lines[rel]
                if lines is not None:
                    lines.pop()
        return self._lines[rel]

    def close(self) -> None:
        """Delete a cloned workspace (idempotent); a local checkout is left alone."""
        if self._owned_dir is not None:
            # A PR's tree chose the shape (shutil.rmtree raised RecursionError on a checkout
            # 1500 directories deep, a legal git path, and left it on disk): the sandbox's walk.
            remove_tree(str(self._owned_dir))
            self._owned_dir = None


def local_workspace(root: Path, head_sha: str, diff: str | None = None) -> Workspace:
    """The developer's own checkout as the workspace (``review local``), with its diff; never
    deleted."""
    return Workspace(root=root, head_sha=head_sha, pr_diff=diff)


class _Git:
    def __init__(
        self, top: Path, deadline: float, max_file_bytes: int, isolation: Isolation
    ) -> None:
        self.top, self.repo, self.home = top, top / "repo", top / "home"
        self.deadline, self.isolation = deadline, isolation
        # git init and small metadata files must always fit, whatever the operator's cap.
        self.max_file_bytes = max(max_file_bytes, _MIN_FSIZE)
        self.refusals: list[Refusal] = []  # by the egress proxy, over every command so far

    def __call__(
        self,
        *args: str,
        extra_env: Mapping[str, str] | None = None,
        secret: str = "",
        egress: Sequence[tuple[str, int]] = (),
    ) -> CommandResult:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise WorkspaceError("clone deadline passed")
        argv: list[str] = []
        for setting in HARDENING:
            argv += ["-c", setting]
        env = git_env(self.home) | dict(extra_env or {})
        try:
            result = run_git(
                [*argv, *args],
                cwd=self.repo,
                job_dir=self.top,
                env=env,
                timeout=left,
                max_file_bytes=self.max_file_bytes,
                egress=egress,
                isolation=self.isolation,
            )
        except IsolationError as exc:
            self.refusals += [_withheld(r, secret) for r in exc.egress_refusals]
            raise self._failed(exc.message) from exc
        self.refusals += [_withheld(r, secret) for r in result.egress_refusals]
        if result.timed_out:
            raise self._failed(f"git {args[0]} timed out")
        if result.stopped_by:
            raise self._failed(f"git {args[0]} was stopped: {result.stopped_by}")
        if result.returncode != 0:
            said = result.stderr.decode("utf-8", "replace")
            if secret:
                said = said.replace(secret, "***")
            last = said.strip().splitlines()[-1:] or [""]
            # closes: the PR note as a way out for the token (a subverted git's stderr); the
            # refusals name the cause when there are any, git only says the proxy answered 403
            raise self._failed(f"git {args[0]} failed (exit {result.returncode})", last[0][:200])
        return result

    def _failed(self, what: str, detail: str = "") -> WorkspaceError:
        refused = tuple(self.refusals)
        if refused:
            what = f"{what}: {_describe(refused)}"
        return WorkspaceError(what, egress_refusals=refused, detail=detail)


def _credential_words(auth_header: str) -> list[str]:
    """What of an ``Authorization`` header is secret: its credential and, for Basic, the
    password inside it; lower-cased, separators dropped, as a destination would carry them."""
    words = auth_header.split()[1:]
    if len(words) == 2 and words[0].lower() == "basic":
        with contextlib.suppress(ValueError):  # binascii.Error: not base64, nothing inside
            words.append(base64.b64decode(words[1], validate=True).decode("utf-8", "replace"))
            words.append(words[-1].partition(":")[2])
    return [_unseparated(w.lower()) for w in words[1:] if len(w) >= 8]


def _unseparated(text: str) -> str:
    # The separators a host name (dots, hyphens) or an IPv6 literal (colons, dots) allows: any
    # can split the credential inside one destination.
    return text.replace(".", "").replace("-", "").replace(":", "")


def _withheld(refusal: Refusal, secret: str) -> Refusal:
    """closes: a subverted git naming a host after the credential, to have it shown on the PR
    or logged (hosts are lower-cased and may split it with dots, hyphens or an IPv6 literal's
    colons, so compare likewise). Only the credential spelt out within one destination is
    caught: split across several, or encoded, it still reaches the operator's log
    (docs/THREAT-MODEL.md, T3)."""
    where = _unseparated(refusal.destination or "")
    if any(word in where for word in _credential_words(secret)):
        return replace(refusal, destination="(withheld: it contained the credential)")
    return refusal


def _describe(refusals: tuple[Refusal, ...]) -> str:
    """Why the proxy stopped the clone, for the PR: fixed text, no destination (git chose it)."""
    first = next((r for r in refusals if r.status == 403), refusals[0])
    if first.status == 403:
        text = "the sandbox refused the clone's connection to another host (not the forge's origin)"
    elif first.status == 502:
        text = "the forge's origin did not answer the sandbox's egress proxy"
    else:
        text = (
            f"the sandbox's egress proxy refused a request from git ({first.status} {first.reason})"
        )
    more = len(set(refusals)) - 1  # a retried fetch repeats the same refusal
    return text + (f", and {more} other refusal{'s' * (more > 1)}" if more else "")


def _check_url(url: str) -> tuple[str, int]:
    """The (host, port) the clone reaches, and nothing else (the sandbox's egress); refuses
    anything but a plain http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WorkspaceError("clone URL must be http(s)")
    if parts.username or parts.password:
        raise WorkspaceError("clone URL must not carry credentials")
    try:
        port = parts.port
    except ValueError as exc:
        raise WorkspaceError("clone URL has an invalid port") from exc
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _tree_sizes(git: _Git, sha: str) -> list[tuple[str, int, str]]:
    """(path, size, object id) of every entry of the tree at ``sha``."""
    out = git("ls-tree", "-r", "-l", "-z", "--full-tree", sha).stdout
    entries: list[tuple[str, int, str]] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        fields = meta.split()
        size = int(fields[3]) if len(fields) == 4 and fields[3].isdigit() else 0
        oid = fields[2].decode("ascii", "replace") if len(fields) > 2 else ""
        entries.append((path.decode("utf-8", "surrogateescape"), size, oid))
    return entries


def _sparse_pattern(path: str) -> str | None:
    """A sparse-checkout pattern excluding exactly ``path``; None if it cannot be expressed."""
    if "\n" in path or "\r" in path:
        return None
    escaped = "".join("\\" + ch if ch in "*?[]\\!#" else ch for ch in path)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "!/" + escaped


def clone_workspace(
    *,
    clone_url: str,
    auth_header: str | None,
    head_sha: str,
    parent: Path | None = None,
    timeout: float,
    max_bytes: int,
    fallback_refs: Sequence[str] = (),
    isolation: Isolation = Isolation.FULL,
    since: str | None = None,
    base: str | None = None,
    merge_base: str | None = None,
) -> Workspace:
    """Fetch ``head_sha`` from ``clone_url`` into a fresh directory and check it out; with
    ``since`` (the last reviewed head), also the diff from there, and with ``base`` (the PR's
    base commit; ``merge_base``: the forge's, if any) the whole PR's when there is none from
    ``since`` (``_incremental``)."""
    if not is_sha(head_sha):
        raise WorkspaceError("head SHA is not a full hexadecimal object id")
    origin = _check_url(clone_url)
    top = Path(tempfile.mkdtemp(prefix="ar-ws-", dir=parent))
    try:
        git = _Git(top, time.monotonic() + timeout, max_bytes, isolation)
        repo = git.repo
        # The analysis sandbox runs as an unprivileged id and binds the checkout read-only:
        # it must be readable by others (its parent stays private).
        git.repo.mkdir()
        git.repo.chmod(0o755)
        git.home.mkdir(mode=0o700)
        git("init", "-q", "--template=", ".")
        auth = {}
        if auth_header:
            auth = {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": auth_header,
            }
        secret = auth_header or ""
        fetch = ("fetch", "-q", "--depth=1", "--no-tags", "--no-recurse-submodules")
        try:
            git(*fetch, "--", clone_url, head_sha, extra_env=auth, secret=secret, egress=(origin,))
        except WorkspaceError:
            if not fallback_refs:
                raise
            # Servers that refuse a bare SHA still serve the PR's ref; it must point at the SHA.
            git(
                *fetch,
                "--",
                clone_url,
                *fallback_refs,
                extra_env=auth,
                secret=secret,
                egress=(origin,),
            )
        git("cat-file", "-e", f"{head_sha}^{{commit}}")
        # Before the checkout (see since_diff), in at most half the time left: a slow fetch of
        # history must not cost the checkout.
        deadline, git.deadline = git.deadline, (git.deadline + time.monotonic()) / 2
        try:
            incremental = whole = None
            if since is not None:
                incremental = since_diff(
                    git,
                    clone_url=clone_url,
                    head_sha=head_sha,
                    since=since,
                    auth=auth,
                    secret=secret,
                    origin=origin,
                )
            if base is not None and (incremental is None or incremental.text is None):
                whole = pr_diff(
                    git,
                    clone_url=clone_url,
                    head_sha=head_sha,
                    base_sha=base,
                    merge_base=merge_base,
                    auth=auth,
                    secret=secret,
                    origin=origin,
                )
        finally:
            git.deadline = deadline
        entries = _tree_sizes(git, head_sha)
        big = [p for p, size, _ in entries if size > min(MAX_CHECKOUT_FILE, max_bytes)]
        total = sum(size for _, size, _ in entries if size <= min(MAX_CHECKOUT_FILE, max_bytes))
        if total > max_bytes:
            raise WorkspaceError(f"the tree is larger than {max_bytes} bytes")
        checkout_config: list[str] = []
        if big:
            patterns = [_sparse_pattern(p) for p in big]
            if any(p is None for p in patterns):
                raise WorkspaceError("a huge file has an unrepresentable name")
            info = repo / ".git" / "info"
            info.mkdir(exist_ok=True)
            (info / "sparse-checkout").write_text(
                "/*\n" + "\n".join(str(p) for p in patterns) + "\n"
            )
            checkout_config = ["-c", "core.sparseCheckout=true"]
        git(*checkout_config, "checkout", "-q", "--no-recurse-submodules", "--detach", head_sha)
        return Workspace(
            root=repo,
            head_sha=head_sha,
            excluded=tuple(big),
            egress_refusals=tuple(git.refusals),
            since_diff=(incremental or _NONE).text,
            since_failure=(incremental or _NONE).why_not,
            pr_diff=(whole or _NONE).text,
            pr_diff_failure=(whole or _NONE).why_not,
            tree={path: oid for path, _, oid in entries},
            _owned_dir=top,
        )
    except BaseException:
        remove_tree(str(top))
        raise

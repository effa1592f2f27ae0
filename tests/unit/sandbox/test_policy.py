"""Policies: every combination is checked before anything forks; refusals name the fix."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from auto_review.sandbox import (
    SandboxPolicyInvalid,
    analyze_policy,
    build_policy,
    clone_policy,
    frozen_env,
    gateway_policy,
    parse_egress,
    run_policy,
)


def test_run_policy_has_no_network_and_denies_every_tcp_port_by_default() -> None:
    policy = run_policy()
    assert not policy.network
    assert policy.tcp_bind_ports == ()
    assert policy.tcp_connect_ports == ()
    assert "/usr" in policy.ro_paths
    assert "/etc/shadow" not in policy.ro_paths
    assert "/etc" not in policy.ro_paths


def test_run_policy_with_network_leaves_ports_unrestricted(tmp_path: Path) -> None:
    policy = run_policy(network=True, rw=[str(tmp_path)])
    assert policy.network
    assert policy.tcp_connect_ports is None
    assert policy.rw_paths == (str(tmp_path),)


def test_clone_policy_reaches_only_the_given_origin_and_never_listens(tmp_path: Path) -> None:
    policy = clone_policy(str(tmp_path), egress=[("Forge.Example", 443)])
    assert policy.network
    assert policy.egress == (("forge.example", 443),)  # host compared case-insensitively
    assert policy.tcp_connect_ports == (443,)  # the tiers without the proxy: Landlock's port rule
    assert policy.tcp_bind_ports == ()
    assert policy.rw_paths == (str(tmp_path),)


@pytest.mark.parametrize(
    ("egress", "fragment"),
    [
        ([], "forge's host and port"),
        ([("user@forge.example", 443)], "DNS name or an IP address"),
        ([("forge.example/x", 443)], "DNS name or an IP address"),
        ([("forge.example.", 443)], "DNS name or an IP address"),
        ([("forge.example", 0)], "out of range"),
        ([("forge.example", 65536)], "out of range"),
    ],
)
def test_clone_policy_refuses_an_egress_that_is_not_one_plain_origin(
    tmp_path: Path, egress: list[tuple[str, int]], fragment: str
) -> None:
    with pytest.raises(SandboxPolicyInvalid) as caught:
        clone_policy(str(tmp_path), egress=egress)
    assert fragment in caught.value.message


def test_parse_egress_reads_host_port_and_bracketed_ipv6() -> None:
    assert parse_egress("Forge.Example:443") == ("forge.example", 443)
    assert parse_egress("[::1]:8080") == ("::1", 8080)
    for bad in ("forge.example", "forge.example:", "::1:80", "http://forge.example:443"):
        with pytest.raises(SandboxPolicyInvalid, match="HOST:PORT"):
            parse_egress(bad)


def test_policy_with_egress_but_ports_that_differ_is_refused(tmp_path: Path) -> None:
    policy = clone_policy(str(tmp_path), egress=[("forge.example", 443)])
    with pytest.raises(SandboxPolicyInvalid, match="exactly the egress ports"):
        dataclasses.replace(policy, tcp_connect_ports=(443, 22)).with_extra_read_only(())


def test_analyze_policy_reads_the_workspace_and_writes_only_scratch(tmp_path: Path) -> None:
    work, scratch = tmp_path / "w", tmp_path / "s"
    work.mkdir()
    scratch.mkdir()
    policy = analyze_policy(str(work), scratch=str(scratch))
    assert str(work) in policy.ro_paths
    assert policy.rw_paths == (str(scratch),)
    assert not policy.network


def test_gateway_policy_binds_its_port_and_reaches_upstream_ports(tmp_path: Path) -> None:
    policy = gateway_policy(str(tmp_path), listen_port=8080, upstream_ports=[443, 11434])
    assert policy.tcp_bind_ports == (8080,)
    assert policy.tcp_connect_ports == (443, 11434)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rw": ["/usr/lib"]}, "system directory"),
        ({"rw": ["/"]}, "host root"),
        ({"ro": ["/proc"]}, "never bound"),
        ({"rw": ["/sys/kernel"]}, "never bound"),
        ({"ro": ["relative/path"]}, "absolute"),
        ({"rw": ["/nonexistent/dir/for/test"]}, "does not exist"),
        ({"ro": ["/"]}, "whole host"),
    ],
)
def test_run_policy_refuses_dangerous_paths_with_a_diagnosis(
    kwargs: dict[str, list[str]], fragment: str
) -> None:
    with pytest.raises(SandboxPolicyInvalid) as caught:
        run_policy(**kwargs)  # type: ignore[arg-type]
    assert fragment in caught.value.message


def test_a_path_cannot_be_both_read_only_and_writable(tmp_path: Path) -> None:
    with pytest.raises(SandboxPolicyInvalid, match="both"):
        run_policy(ro=[str(tmp_path)], rw=[str(tmp_path)])


def test_build_policy_refuses_network_for_analyze_and_ports_for_run(tmp_path: Path) -> None:
    with pytest.raises(SandboxPolicyInvalid, match="no network"):
        build_policy("analyze", ro=[str(tmp_path)], network=True)
    with pytest.raises(SandboxPolicyInvalid, match="no --port"):
        build_policy("run", connect_ports=[443])
    with pytest.raises(SandboxPolicyInvalid, match="--listen"):
        build_policy("gateway", rw=[str(tmp_path)])
    with pytest.raises(SandboxPolicyInvalid, match="forge"):
        build_policy("clone", rw=[str(tmp_path)])
    with pytest.raises(SandboxPolicyInvalid, match="unknown policy"):
        build_policy("everything")
    with pytest.raises(SandboxPolicyInvalid, match="out of range"):
        build_policy("clone", rw=[str(tmp_path)], egress=[("forge.example", 70000)])
    with pytest.raises(SandboxPolicyInvalid, match="not --port"):
        build_policy("clone", rw=[str(tmp_path)], connect_ports=[443])
    with pytest.raises(SandboxPolicyInvalid, match="only clone"):
        build_policy("run", network=True, egress=[("forge.example", 443)])


def test_build_policy_accepts_each_named_policy_with_its_required_options(tmp_path: Path) -> None:
    assert build_policy("run").name == "run"
    assert build_policy("analyze", ro=[str(tmp_path)]).name == "analyze"
    clone = build_policy("clone", rw=[str(tmp_path)], egress=[("forge.example", 22)])
    assert clone.name == "clone"
    assert build_policy("gateway", rw=[str(tmp_path)], listen_port=9000).name == "gateway"


def test_job_paths_with_a_symlink_are_refused_but_system_links_are_followed(
    tmp_path: Path,
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "repo").symlink_to(target)
    with pytest.raises(SandboxPolicyInvalid, match="symlink"):
        run_policy(ro=[str(tmp_path / "job" / "repo")])
    with pytest.raises(SandboxPolicyInvalid, match="symlink"):
        run_policy(rw=[str(tmp_path / "job" / "repo")])
    assert "/bin" in run_policy().ro_paths  # /bin -> usr/bin on merged-/usr systems is fine


def test_job_server_clamps_requested_limits_to_the_policy_defaults(tmp_path: Path) -> None:
    from auto_review.sandbox import Limits
    from auto_review.sandbox._jobserver import _clamped
    from auto_review.sandbox.policy import DEFAULT_LIMITS, DEFAULT_TMP_SIZE

    greedy = Limits(
        cpu_seconds=None,
        address_space_bytes=None,
        file_size_bytes=None,
        open_files=1 << 20,
        processes=None,
        disk_bytes=None,
    )
    policy = run_policy(limits=greedy)
    clamped = _clamped(dataclasses.replace(policy, tmp_size_bytes=1 << 40))
    assert clamped.limits == DEFAULT_LIMITS["run"]
    assert clamped.tmp_size_bytes == DEFAULT_TMP_SIZE
    modest = Limits(
        cpu_seconds=5,
        address_space_bytes=1 << 28,
        file_size_bytes=1 << 20,
        open_files=64,
        processes=8,
        disk_bytes=1 << 24,
    )
    assert _clamped(run_policy(limits=modest)).limits == modest  # below the ceiling: kept


@pytest.mark.parametrize("name", ["run", "clone", "analyze"])
def test_job_server_clamps_the_disk_cap_to_the_policy_ceiling(name: str, tmp_path: Path) -> None:
    from auto_review.sandbox._jobserver import _clamped
    from auto_review.sandbox.policy import DEFAULT_LIMITS

    ceiling = DEFAULT_LIMITS[name].disk_bytes
    assert ceiling is not None  # every job policy has a disk cap
    rw = [] if name == "analyze" else [str(tmp_path)]
    ro = [str(tmp_path)] if name == "analyze" else []
    base = build_policy(
        name, ro=ro, rw=rw, egress=[("forge.example", 443)] if name == "clone" else []
    )
    unlimited = dataclasses.replace(base, limits=dataclasses.replace(base.limits, disk_bytes=None))
    assert _clamped(unlimited).limits.disk_bytes == ceiling  # None is not "no cap" here
    assert _clamped(base.with_disk_cap(1 << 50)).limits.disk_bytes == ceiling
    assert _clamped(base.with_disk_cap(1 << 20)).limits.disk_bytes == 1 << 20


def test_disk_cap_defaults_scale_with_the_file_size_cap_and_the_gateway_has_none() -> None:
    from auto_review.sandbox.policy import DEFAULT_LIMITS

    for name in ("run", "clone", "analyze"):
        limits = DEFAULT_LIMITS[name]
        assert limits.disk_bytes == 2 * (limits.file_size_bytes or 0), name
    assert DEFAULT_LIMITS["gateway"].disk_bytes is None  # its state grows by design


def test_disk_cap_must_be_positive_and_none_keeps_the_policy_default() -> None:
    policy = run_policy()
    assert policy.with_disk_cap(None) == policy
    assert policy.with_disk_cap(1 << 20).limits.disk_bytes == 1 << 20
    with pytest.raises(SandboxPolicyInvalid, match="disk cap must be positive"):
        policy.with_disk_cap(0)


def test_frozen_env_passes_the_unpacked_library_path_not_the_operators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The one-file bootloader puts its unpack dir first and appends the operator's own list.
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", "/tmp/_MEIabc", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/tmp/_MEIabc:/home/op/lib:/opt/evil")
    monkeypatch.setenv("_PYI_ARCHIVE_FILE", "/usr/local/bin/auto-review")
    env = frozen_env()
    assert env == {
        "LD_LIBRARY_PATH": "/tmp/_MEIabc",
        "_PYI_ARCHIVE_FILE": "/usr/local/bin/auto-review",
    }
    monkeypatch.setenv("LD_LIBRARY_PATH", "/home/op/lib")
    assert "LD_LIBRARY_PATH" not in frozen_env()
    monkeypatch.delattr(sys, "frozen")
    assert frozen_env() == {}

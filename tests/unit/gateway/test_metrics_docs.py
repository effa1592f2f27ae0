"""Metric names used by the Prometheus rules and the docs exist in the gateway's registry."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from auto_review.gateway import GatewayMetrics

ROOT = Path(__file__).resolve().parents[3]
RULES = sorted((ROOT / "deploy" / "prometheus").glob("*.yml"))
_NAME = re.compile(r"\bauto_review_[a-z0-9_]+")
_RECORDED = re.compile(r"\bauto_review:[a-z0-9_:]+")


def _exposed_names() -> set[str]:
    """Every sample name the registry can expose, whether or not a series exists yet."""
    names: set[str] = set()
    for metric in GatewayMetrics().registry.collect():
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "info": ("_info",),
            "gauge": ("",),
        }[metric.type]
        names.update(metric.name + s for s in suffixes)
    return names


def _rules() -> list[dict[str, str]]:
    found = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(group["rules"])
    return found


def test_rule_files_exist_with_alerts_and_recording_rules() -> None:
    kinds = {"record" if "record" in r else "alert" for r in _rules()}
    assert kinds == {"record", "alert"}


def test_every_metric_name_in_the_rules_exists_in_the_registry() -> None:
    exposed = _exposed_names()
    used = {name for rule in _rules() for name in _NAME.findall(rule["expr"])}
    assert used  # positive control: the pattern finds names at all
    assert used <= exposed, sorted(used - exposed)


def test_every_recorded_series_used_in_an_alert_is_defined() -> None:
    defined = {r["record"] for r in _rules() if "record" in r}
    used = {n for r in _rules() if "alert" in r for n in _RECORDED.findall(r["expr"])}
    assert used <= defined, sorted(used - defined)


def test_operations_doc_lists_exactly_the_registry_metrics() -> None:
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    section = doc.split("## Metrics", 1)[1]
    documented = set(re.findall(r"^\| `(auto_review_[a-z0-9_]+)`", section, re.M))
    suffix = {"counter": "_total", "histogram": "", "info": "_info", "gauge": ""}
    registered = {m.name + suffix[m.type] for m in GatewayMetrics().registry.collect()}
    assert documented == registered

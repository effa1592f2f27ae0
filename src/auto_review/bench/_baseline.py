"""Reading a baseline: the ``--json`` output of an earlier ``bench run`` (or its summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from auto_review.errors import ConfigError

__all__ = ["load_baseline"]


def load_baseline(path: Path) -> dict[str, Any]:
    """The baseline summary; ``ConfigError`` naming the file if it is unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"baseline {path} is not JSON") from exc
    summary = data.get("summary", data) if isinstance(data, dict) else None
    if not isinstance(summary, dict) or "precision" not in summary:
        raise ConfigError(
            f"baseline {path} has no summary",
            ("write one with `auto-review bench run FIXTURES --json > baseline.json`",),
        )
    return summary

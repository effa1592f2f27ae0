"""A target for ``run_callable``: what a confined Python job can learn about its caller.

``inspect(payload)`` takes JSON ``{"marker": str, "paths": [str, ...]}`` and returns JSON: the
environment's names, whether any value holds the marker, and for each path whether it could be
read and whether the marker is in it. Standard library only.
"""

from __future__ import annotations

import errno
import json
import os

__all__ = ["inspect"]


def inspect(payload: bytes) -> bytes:
    """Look for the caller's secret (MARKER) in the environment and in the given files."""
    request = json.loads(payload)
    marker = request["marker"]
    reads: dict[str, dict[str, object]] = {}
    for path in request["paths"]:
        try:
            with open(path, "rb") as fh:
                data = fh.read(1 << 20)
        except OSError as exc:
            reads[path] = {"ok": False, "errno": errno.errorcode.get(exc.errno or 0, "")}
        else:
            reads[path] = {"ok": True, "contains": marker.encode() in data}
    leaked = sorted(k for k, v in os.environ.items() if marker in v)
    return json.dumps({"env": sorted(os.environ), "leaked": leaked, "reads": reads}).encode()

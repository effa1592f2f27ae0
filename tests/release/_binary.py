"""Running the built executable, and reading the table of contents of its embedded archive."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

# PyInstaller's one-file layout (PyInstaller 6, archive/readers.py documents it): the file ends
# with a cookie "MEI\014\013\012\013\016", archive length, TOC offset and TOC length (network
# byte order); each TOC entry is entry length, offset, length, uncompressed length, a compression
# flag, a type code and a NUL-padded name.
_COOKIE_MAGIC = b"MEI\014\013\012\013\016"
_COOKIE = struct.Struct("!8sIIII64s")
_ENTRY = struct.Struct("!IIIIBc")


def bundled_names(binary: Path) -> set[str]:
    """The names of the files the one-file executable carries (its archive's TOC)."""
    data = binary.read_bytes()
    cookie_at = data.rfind(_COOKIE_MAGIC)
    if cookie_at < 0:
        raise ValueError(f"{binary} is not a PyInstaller one-file executable")
    _magic, length, toc_offset, toc_length, _pyver, _lib = _COOKIE.unpack_from(data, cookie_at)
    start = cookie_at + _COOKIE.size - length
    toc = data[start + toc_offset : start + toc_offset + toc_length]
    names, position = set(), 0
    while position < len(toc):
        entry_length = _ENTRY.unpack_from(toc, position)[0]
        raw = toc[position + _ENTRY.size : position + entry_length]
        names.add(raw.rstrip(b"\0").decode("utf-8"))
        position += entry_length
    return names


def host_environment(**extra: str) -> dict[str, str]:
    """A minimal environment: none of the developer's settings, system directories on PATH."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": os.environ["HOME"]}
    env.update(extra)
    return env


def run_binary(
    binary: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the built executable with a minimal environment and capture its output."""
    return subprocess.run(
        [str(binary), *args],
        env=host_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

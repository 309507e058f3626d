"""Secrets at rest for the emulator: its state directory and the files that hold keys (the application's
group keys, the CA and server private keys) are private to the user it runs as, from their first byte.

The same few lines as translator/private_files.py, on purpose: the emulator stands in for IoT Central and
imports nothing of the translator.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_OTHERS = 0o077


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & _OTHERS:
        path.chmod(mode)
        log.warning("%s was readable by others (mode %o): now %o", path, current, mode)


def private_dir(path: Path) -> Path:
    """Create `path` (parents as usual) as 0700, or tighten it to 0700."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data` in a file that is 0600 from its creation (temp file + rename).

    A crash leaves the old file or the new one, never half of one.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # a leftover may have any mode: never reuse it
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise

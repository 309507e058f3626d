"""Secrets at rest: the state directory and the files in it that hold keys (the store with imported device
keys, minted private keys) are private to the user the translator runs as.

Created private from their first byte: a file written and then chmod-ed is readable by everyone in between
(and for good if the process dies there). `os.open` with a mode creates it private atomically; the umask
can only take bits away. What an older version left looser is tightened, with one log line.
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


def create_private(path: Path) -> None:
    """Make sure the file exists and is 0600 before another library (SQLite) opens and fills it.

    SQLite creates its -wal and -shm files with the database file's permissions, so they follow.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        _tighten(path, PRIVATE_FILE)
    else:
        os.close(fd)


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

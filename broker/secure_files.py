"""Writing files that hold keys, secrets and broker configuration.

One way for the whole code base: a sibling temp file created with the final mode (never briefly
world-readable), fsync, rename over the target, fsync the directory. Readers (Mosquitto on
SIGHUP, a restarted FleetLink) see the old file or the whole new one, never half of one, and a
crash never leaves a truncated key behind.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


def write_atomically(path: Path, data: bytes, *, mode: int = SECRET_MODE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)  # the umask may have narrowed the requested mode
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)

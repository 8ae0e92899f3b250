"""Starting a benchmark's helper processes (``python -m bench.<module>``): the repository on
their import path, their configuration in a private file (it holds passwords), their stderr in
a log file of the run's directory, and a session of their own (a terminal's Ctrl-C is ours)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """This environment with the repository first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to a file only its owner may read (mode 0600 before any byte is in)."""
    path.touch(mode=0o600)
    path.write_text(text)
    return path


async def start_module(
    module: str, *args: str, workdir: Path, log_name: str, **options: Any
) -> asyncio.subprocess.Process:
    """``python -m module args...`` in ``workdir`` (not the caller's directory: a stray
    ``bench.py`` there would shadow us), stdout piped, stderr appended to ``workdir/log_name``.
    ``options`` go to :func:`asyncio.create_subprocess_exec` (e.g. ``limit``)."""
    with (workdir / log_name).open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=child_env(),
            cwd=workdir,
            start_new_session=True,
            **options,
        )

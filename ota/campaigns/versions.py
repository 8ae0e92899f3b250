"""Comparing software versions to tell a downgrade: ``2.10.0`` is newer than ``2.9.3``.

Versions are split into numeric and alphabetic runs, numbers compared as numbers; a version
with a pre-release suffix (``2.1.0-rc1``) sorts before the same version without one, as in
Semantic Versioning 2.0.0 section 11. Anything unparseable compares as text.
"""

from __future__ import annotations

import re

_RUN = re.compile(r"\d+|[A-Za-z]+")


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key; every element is (kind, number, text) so no int is compared with a str."""
    core, _, pre = version.partition("-")
    parts = [(3, int(run), "") if run.isdigit() else (2, 0, run) for run in _RUN.findall(core)]
    # The end of the core version: without a pre-release it ranks above one.
    parts.append((1, 0, "") if not pre else (0, 0, pre))
    return tuple(parts)


def is_older(candidate: str, installed: str) -> bool:
    """Whether installing ``candidate`` over ``installed`` is a downgrade."""
    return version_key(candidate) < version_key(installed)

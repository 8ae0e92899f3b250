"""Which bytes of an artifact a download request asks for (RFC 9110 section 14), as a pure
function, so resumable downloads behave the same whichever server or proxy sits in front.

One range per request: a car resuming a download asks for ``bytes=<received>-``. A request for
several ranges is answered with the whole representation (section 14.2 lets a server ignore
Range), as is a Range header it cannot parse or whose unit is not ``bytes`` (it MUST ignore
those). ``If-Range`` with a different ETag means the artifact changed since the client's first
part: whole representation again (section 13.1.5). Weak validators never match ``If-Range``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


@dataclass(frozen=True, slots=True)
class Whole:
    """200: the whole representation."""


@dataclass(frozen=True, slots=True)
class Part:
    """206: bytes ``first`` to ``last`` inclusive (section 14.1.1 notation)."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """416: nothing of the requested range exists; ``Content-Range: bytes */size``."""

    size: int

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


Selection = Whole | Part | Unsatisfiable


def select(range_header: str | None, if_range: str | None, *, size: int, etag: str) -> Selection:
    if range_header is None:
        return Whole()
    if if_range is not None and (if_range.startswith("W/") or if_range.strip() != etag):
        return Whole()
    unit, _, ranges = range_header.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return Whole()
    match = _SPEC.fullmatch(ranges)
    if match is None:
        return Whole()
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
        if last_text and last < first:
            return Whole()  # syntactically invalid: ignored (section 14.1.1)
        if first >= size:
            return Unsatisfiable(size)
        return Part(first, min(last, size - 1), size)
    if not last_text:
        return Whole()  # "bytes=-"
    suffix = int(last_text)  # the last N bytes
    if suffix == 0 or size == 0:
        return Unsatisfiable(size)
    return Part(max(size - suffix, 0), size - 1, size)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` (section 13.1.2, weak comparison): ``*`` or a listed tag."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))

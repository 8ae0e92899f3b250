"""The Range / If-Range / If-None-Match decisions (RFC 9110 sections 13 and 14)."""

from __future__ import annotations

import pytest

from ota.byte_ranges import Part, Unsatisfiable, Whole, etag_matches, select

ETAG = '"abc"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Whole()),
        ("bytes=0-9", Part(0, 9, 100)),
        ("bytes=90-", Part(90, 99, 100)),
        ("bytes=90-1000", Part(90, 99, 100)),  # last clipped to the size
        ("bytes=-10", Part(90, 99, 100)),
        ("bytes=-1000", Part(0, 99, 100)),  # suffix longer than the file: all of it
        ("BYTES = 5 - 5", Part(5, 5, 100)),
        ("bytes=100-", Unsatisfiable(100)),
        ("bytes=150-160", Unsatisfiable(100)),
        ("bytes=-0", Unsatisfiable(100)),
        ("bytes=9-0", Whole()),  # invalid: ignored
        ("bytes=0-1,5-6", Whole()),  # several ranges: whole representation
        ("items=0-9", Whole()),  # unknown unit: ignored
        ("bytes=abc", Whole()),
        ("bytes=-", Whole()),
        ("bytes", Whole()),
    ],
)
def test_select(header: str | None, expected: object) -> None:
    assert select(header, None, size=100, etag=ETAG) == expected


def test_part_headers() -> None:
    part = select("bytes=10-19", None, size=100, etag=ETAG)
    assert isinstance(part, Part)
    assert (part.length, part.content_range) == (10, "bytes 10-19/100")
    assert Unsatisfiable(100).content_range == "bytes */100"


def test_if_range_must_match_the_strong_etag() -> None:
    assert select("bytes=10-", ETAG, size=100, etag=ETAG) == Part(10, 99, 100)
    assert select("bytes=10-", '"other"', size=100, etag=ETAG) == Whole()
    assert select("bytes=10-", f"W/{ETAG}", size=100, etag=ETAG) == Whole()
    assert select("bytes=10-", "Wed, 21 Oct 2015 07:28:00 GMT", size=100, etag=ETAG) == Whole()


def test_an_empty_representation_has_no_satisfiable_range() -> None:
    assert select("bytes=0-", None, size=0, etag=ETAG) == Unsatisfiable(0)
    assert select("bytes=-5", None, size=0, etag=ETAG) == Unsatisfiable(0)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        (ETAG, True),
        (f"W/{ETAG}", True),  # If-None-Match compares weakly
        (f'"x", {ETAG}', True),
        ("*", True),
        ('"x"', False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, ETAG) is matches

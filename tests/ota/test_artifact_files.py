"""Artifact content on disk: streamed in chunks, hashed on the way, never half-visible."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ota.artifact_files import INCOMING_DIR, ArtifactFiles
from ota.errors import ArtifactIncompleteError, ArtifactInvalidError, ArtifactTooLargeError
from tests.ota.conftest import chunks_of

BUFFER = 4096


def files(tmp_path: Path) -> ArtifactFiles:
    return ArtifactFiles(tmp_path / "artifacts", write_buffer_bytes=BUFFER)


async def test_a_stream_is_stored_under_its_hash_with_its_length(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    store = files(tmp_path)
    blob = await store.receive(chunks_of(data, 777), max_bytes=len(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.length == len(data)
    assert store.path(blob.sha256).read_bytes() == data
    assert list((store.directory / INCOMING_DIR).iterdir()) == []


async def test_chunks_reach_the_disk_before_the_stream_ends(tmp_path: Path) -> None:
    """Memory stays bounded: what was received is written once the buffer fills, while the
    upload is still running."""
    store = files(tmp_path)
    sizes_seen: list[int] = []

    async def slow_stream() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000
            incoming = list((store.directory / INCOMING_DIR).iterdir())
            sizes_seen.append(incoming[0].stat().st_size)

    blob = await store.receive(slow_stream(), max_bytes=10_000)
    assert blob.length == 10_000
    # Never more than one buffer (plus the chunk that filled it) held in memory.
    received = [1000 * (i + 1) for i in range(10)]
    assert all(received[i] - sizes_seen[i] <= BUFFER for i in range(10)), sizes_seen
    assert sizes_seen[-1] > 0


async def test_an_oversize_stream_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = files(tmp_path)
    with pytest.raises(ArtifactTooLargeError) as caught:
        await store.receive(chunks_of(b"y" * 5001), max_bytes=5000)
    assert caught.value.max_bytes == 5000
    assert list((store.directory / INCOMING_DIR).iterdir()) == []
    assert [p.name for p in store.directory.iterdir()] == [INCOMING_DIR]


async def test_a_stream_shorter_than_declared_is_refused(tmp_path: Path) -> None:
    store = files(tmp_path)
    with pytest.raises(ArtifactIncompleteError) as caught:
        await store.receive(chunks_of(b"z" * 100), max_bytes=1000, declared_length=200)
    assert (caught.value.declared, caught.value.received) == (200, 100)
    assert list((store.directory / INCOMING_DIR).iterdir()) == []


async def test_a_failing_stream_leaves_no_partial_file(tmp_path: Path) -> None:
    store = files(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 10_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.receive(broken(), max_bytes=100_000)
    assert list((store.directory / INCOMING_DIR).iterdir()) == []


async def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    store = files(tmp_path)
    first = await store.receive(chunks_of(b"same" * 100), max_bytes=1000)
    second = await store.receive(chunks_of(b"same" * 100, 3), max_bytes=1000)
    assert first == second
    assert sorted(p.name for p in store.directory.iterdir()) == sorted([INCOMING_DIR, first.sha256])


def test_paths_are_only_ever_hashes(tmp_path: Path) -> None:
    store = files(tmp_path)
    with pytest.raises(ArtifactInvalidError):
        store.path("../../etc/passwd")

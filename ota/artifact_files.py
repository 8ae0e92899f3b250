"""Artifact content on disk, content-addressed: ``<artifacts dir>/<sha256>``.

An upload is streamed into ``incoming/`` chunk by chunk, hashed as it arrives and never held
whole in memory (at most one write buffer per upload). Only a complete upload is fsynced and
renamed to its hash, so a half-written file is never served; identical content uploaded twice
is stored once. The file name being the hash makes an integrity check of the store a
``sha256sum`` away.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ota.errors import ArtifactIncompleteError, ArtifactInvalidError, ArtifactTooLargeError
from ota.image_target import SHA256_PATTERN

INCOMING_DIR = "incoming"
DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class StoredBlob:
    sha256: str
    length: int


class ArtifactFiles:
    def __init__(self, directory: Path, *, write_buffer_bytes: int) -> None:
        self.directory = directory
        self._write_buffer_bytes = write_buffer_bytes

    def path(self, sha256: str) -> Path:
        if re.fullmatch(SHA256_PATTERN, sha256) is None:
            raise ArtifactInvalidError(f"not a sha256: {sha256!r}", field="sha256", value=sha256)
        return self.directory / sha256

    async def receive(
        self,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        declared_length: int | None = None,
    ) -> StoredBlob:
        """Store a stream; refuses more than ``max_bytes`` as soon as it is exceeded, and a
        stream shorter than ``declared_length`` (the client went away)."""
        incoming = self.directory / INCOMING_DIR
        await asyncio.to_thread(incoming.mkdir, mode=DIR_MODE, parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        temp = Path(temp_name)
        digest = hashlib.sha256()
        length = 0
        buffer = bytearray()
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    length += len(chunk)
                    if length > max_bytes:
                        raise ArtifactTooLargeError(
                            f"artifact exceeds {max_bytes} bytes", max_bytes=max_bytes
                        )
                    digest.update(chunk)
                    buffer += chunk
                    if len(buffer) >= self._write_buffer_bytes:
                        await asyncio.to_thread(_write, out, bytes(buffer))
                        buffer.clear()
                if declared_length is not None and length != declared_length:
                    raise ArtifactIncompleteError(
                        f"received {length} of {declared_length} declared bytes",
                        declared=declared_length,
                        received=length,
                    )
                await asyncio.to_thread(_finish, out, bytes(buffer))
            blob = StoredBlob(digest.hexdigest(), length)
            await asyncio.to_thread(self._install, temp, blob.sha256)
        except BaseException:
            # Also on cancellation (client disconnect): never leave partial files behind. A
            # blocking unlink on purpose: under anyio's cancel scopes an await here would be
            # cancelled again and the file kept.
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()  # noqa: ASYNC240
            raise
        return blob

    def _install(self, temp: Path, sha256: str) -> None:
        final = self.path(sha256)
        if final.exists():
            temp.unlink()  # same content already stored
            return
        temp.replace(final)
        _fsync_dir(self.directory)


def _write(out: BinaryIO, data: bytes) -> None:
    out.write(data)
    out.flush()  # to the OS now: the buffer is the only copy of the upload in memory


def _finish(out: BinaryIO, tail: bytes) -> None:
    out.write(tail)
    out.flush()
    os.fsync(out.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

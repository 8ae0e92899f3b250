"""The artifact store: uploaded images (content on disk, facts in ``ota_artifacts``).

An upload is refused before its body is read when it can already be known to fail (duplicate
name/version, release counter below a published one); the same checks run again under the
repository lock when the image is published, which is what makes them race-free.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from ota.artifact_files import ArtifactFiles
from ota.errors import ArtifactExistsError, ReleaseCounterRollbackError
from ota.image_target import ImageSpec, ImageTarget


@dataclass(frozen=True, slots=True)
class Artifact:
    id: uuid.UUID
    spec: ImageSpec
    length: int
    sha256: str
    uploaded_at: datetime
    published_at: datetime | None = None
    targets_version: int | None = None  # the targets version that first listed it

    @property
    def target_path(self) -> str:
        return self.spec.target_path

    @property
    def published(self) -> bool:
        return self.published_at is not None

    def image_target(self) -> ImageTarget:
        return ImageTarget(self.spec, self.length, self.sha256)


_COLUMNS = (
    "id, name, version, length, sha256, hardware_ids, release_counter, dependencies, "
    "conflicts, uploaded_at, published_at, targets_version"
)


def _artifact(row: asyncpg.Record) -> Artifact:
    return Artifact(
        id=row["id"],
        spec=ImageSpec(
            name=row["name"],
            version=row["version"],
            hardware_ids=tuple(row["hardware_ids"]),
            release_counter=row["release_counter"],
            dependencies=tuple(row["dependencies"]),
            conflicts=tuple(row["conflicts"]),
        ),
        length=row["length"],
        sha256=row["sha256"],
        uploaded_at=row["uploaded_at"],
        published_at=row["published_at"],
        targets_version=row["targets_version"],
    )


class ArtifactStore:
    def __init__(self, pool: asyncpg.Pool, files: ArtifactFiles, *, max_bytes: int) -> None:
        self._pool = pool
        self.files = files
        self.max_bytes = max_bytes

    async def upload(
        self,
        spec: ImageSpec,
        chunks: AsyncIterable[bytes],
        now: datetime,
        *,
        declared_length: int | None = None,
    ) -> Artifact:
        async with self._pool.acquire() as conn:
            await check_acceptable(conn, spec)
        blob = await self.files.receive(
            chunks, max_bytes=self.max_bytes, declared_length=declared_length
        )
        artifact = Artifact(uuid.uuid4(), spec, blob.length, blob.sha256, now)
        artifact.image_target()  # validates length and hash before the row exists
        try:
            await self._pool.execute(
                f"INSERT INTO ota_artifacts ({_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)",
                artifact.id,
                spec.name,
                spec.version,
                artifact.length,
                artifact.sha256,
                list(spec.hardware_ids),
                spec.release_counter,
                list(spec.dependencies),
                list(spec.conflicts),
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            # A concurrent upload of the same name/version won the race (the file, being
            # content-addressed, is shared and stays).
            raise _exists(spec) from exc
        return artifact

    async def get(self, artifact_id: uuid.UUID) -> Artifact | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM ota_artifacts WHERE id = $1", artifact_id
        )
        return _artifact(row) if row else None

    async def page(self, *, limit: int, offset: int) -> tuple[list[Artifact], int]:
        """Newest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM ota_artifacts ORDER BY uploaded_at DESC, id"
                " LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
            count = await conn.fetchval("SELECT count(*) FROM ota_artifacts")
        return [_artifact(r) for r in rows], count

    async def published_content(
        self, target_path: str, sha256: str
    ) -> tuple[Artifact, Path] | None:
        """The published artifact a consistent-snapshot target path names, and its file."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM ota_artifacts"
            " WHERE target_path = $1 AND sha256 = $2 AND published_at IS NOT NULL",
            target_path,
            sha256,
        )
        if row is None:
            return None
        artifact = _artifact(row)
        return artifact, self.files.path(artifact.sha256)


# -- checks and publishing steps, on a connection the caller holds -------------------------------


def _exists(spec: ImageSpec) -> ArtifactExistsError:
    return ArtifactExistsError(
        f"an artifact named {spec.name!r} version {spec.version!r} (target path "
        f"{spec.target_path!r}) already exists",
        name=spec.name,
        version=spec.version,
    )


async def check_acceptable(conn: asyncpg.Connection, spec: ImageSpec) -> None:
    taken = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM ota_artifacts"
        " WHERE (name = $1 AND version = $2) OR target_path = $3)",
        spec.name,
        spec.version,
        spec.target_path,
    )
    if taken:
        raise _exists(spec)
    await check_release_counter(conn, spec)


async def check_release_counter(
    conn: asyncpg.Connection, spec: ImageSpec, *, excluding: uuid.UUID | None = None
) -> None:
    """Uptane release counters only go up per hardware id (an ECU refuses a lower one)."""
    rows = await conn.fetch(
        "SELECT hardware_id, max(release_counter) AS published"
        " FROM ota_artifacts, unnest(hardware_ids) AS hardware_id"
        " WHERE published_at IS NOT NULL AND hardware_ids && $1::text[]"
        " AND hardware_id = ANY($1::text[]) AND id IS DISTINCT FROM $2"
        " GROUP BY hardware_id ORDER BY hardware_id",
        list(spec.hardware_ids),
        excluding,
    )
    for row in rows:
        if row["published"] > spec.release_counter:
            raise ReleaseCounterRollbackError(
                f"release counter {spec.release_counter} is below {row['published']}, already "
                f"published for hardware id {row['hardware_id']}",
                hardware_id=row["hardware_id"],
                release_counter=spec.release_counter,
                published=row["published"],
            )


async def lock_artifact(conn: asyncpg.Connection, artifact_id: uuid.UUID) -> Artifact | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ota_artifacts WHERE id = $1 FOR UPDATE", artifact_id
    )
    return _artifact(row) if row else None


async def published_paths(conn: asyncpg.Connection, paths: Iterable[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT target_path FROM ota_artifacts"
        " WHERE target_path = ANY($1::text[]) AND published_at IS NOT NULL",
        list(paths),
    )
    return {r["target_path"] for r in rows}


async def mark_published(
    conn: asyncpg.Connection, artifact_id: uuid.UUID, now: datetime, targets_version: int
) -> Artifact:
    row: Any = await conn.fetchrow(
        "UPDATE ota_artifacts SET published_at = $2, targets_version = $3 WHERE id = $1"
        f" RETURNING {_COLUMNS}",
        artifact_id,
        now,
        targets_version,
    )
    return _artifact(row)

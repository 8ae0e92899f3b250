"""Publishing: an uploaded artifact becomes a TUF target, in one locked transaction with the
new targets, snapshot and timestamp versions that list it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from ota.artifact_store import (
    Artifact,
    ArtifactStore,
    check_release_counter,
    lock_artifact,
    mark_published,
    published_paths,
)
from ota.errors import (
    ArtifactContentMissingError,
    ArtifactNotFoundError,
    DependencyNotPublishedError,
)
from ota.image_repository import ImageRepository


async def publish_artifact(
    repository: ImageRepository, store: ArtifactStore, artifact_id: uuid.UUID, now: datetime
) -> Artifact:
    """Publish; idempotent (an already published artifact is returned unchanged, so a client
    retrying after a lost response gets the same answer)."""
    async with repository.editing(now) as editing:
        conn = editing.conn
        artifact = await lock_artifact(conn, artifact_id)
        if artifact is None:
            raise ArtifactNotFoundError(f"no artifact {artifact_id}", artifact=str(artifact_id))
        if artifact.published:
            return artifact
        spec = artifact.spec
        missing = set(spec.dependencies) - await published_paths(conn, spec.dependencies)
        if missing:
            raise DependencyNotPublishedError(
                f"{artifact.target_path} depends on unpublished {sorted(missing)}",
                dependencies=tuple(sorted(missing)),
            )
        # Under the repository lock: no concurrent publish can slip a higher counter in.
        await check_release_counter(conn, spec, excluding=artifact.id)
        path = store.files.path(artifact.sha256)
        if not await asyncio.to_thread(path.is_file):
            raise ArtifactContentMissingError(
                f"the content of {artifact.target_path} ({path}) is missing",
                sha256=artifact.sha256,
            )
        targets_version = editing.core.add_targets([artifact.image_target().to_target_file()])
        return await mark_published(conn, artifact.id, now, targets_version)

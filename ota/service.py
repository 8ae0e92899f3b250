"""``OtaService``: what the API and the runtime hold. It owns the image repository and the
artifact store, and runs the refresh loop that keeps timestamp, snapshot and targets from
expiring (TUF spec 5.4.4 and 5.5.6: a client refuses expired metadata, so an unattended
repository would freeze every car after a day).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime

import asyncpg

from ota.artifact_files import ArtifactFiles
from ota.artifact_store import Artifact, ArtifactStore
from ota.errors import OtaError
from ota.image_repository import ImageRepository
from ota.keys import KeyDirectory
from ota.policy import ONLINE_ROLES, ExpiryPolicy
from ota.publishing import publish_artifact
from ota.settings import OtaSettings
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)


class OtaService:
    def __init__(
        self, pool: asyncpg.Pool, settings: OtaSettings, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.settings = settings
        self.clock = clock
        # Online keys only: the root keys' directory is never known to the service.
        self.online_keys = KeyDirectory(settings.keys_dir, roles=ONLINE_ROLES)
        self.repository = ImageRepository(
            pool, self.online_keys, ExpiryPolicy.from_settings(settings)
        )
        self.artifacts = ArtifactStore(
            pool,
            ArtifactFiles(settings.artifacts_dir, write_buffer_bytes=settings.write_buffer_bytes),
            max_bytes=settings.max_artifact_bytes,
        )
        self.last_refresh_error: OtaError | None = None

    def now(self) -> datetime:
        return utc_from_ms(self.clock.now_ms())

    async def publish(self, artifact_id: uuid.UUID, now: datetime) -> Artifact:
        return await publish_artifact(self.repository, self.artifacts, artifact_id, now)

    async def refresh_if_due(self, now: datetime) -> tuple[str, ...]:
        """Re-sign what is close to expiry; returns the roles re-signed."""
        return await self.repository.refresh_if_due(now)

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``refresh_interval_s`` until ``stop``. A failure is logged and retried
        at the next tick: the refresh window leaves room for several."""
        while not stop.is_set():
            try:
                await self.refresh_if_due(self.now())
                self.last_refresh_error = None
            except OtaError as exc:
                self.last_refresh_error = exc
                log.error("OTA metadata refresh failed: %s", exc, extra={"code": exc.code})
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("OTA metadata refresh failed, retrying: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.refresh_interval_s)

"""OTA fixtures: settings in a per-test data directory, an initialized service on the
per-test database, and an offline root key directory kept apart from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from ota.ceremony import initialize, offline_directory, online_directory
from ota.keys import KeyDirectory
from ota.policy import KeyPolicy, RoleKeys
from ota.service import OtaService
from ota.settings import OtaSettings
from tests.ota.memory_repository import wall_now


@dataclass
class OtaFixture:
    service: OtaService
    offline: KeyDirectory
    online: KeyDirectory

    @property
    def settings(self) -> OtaSettings:
        return self.service.settings


def ota_settings(tmp_path: Path, **overrides: object) -> OtaSettings:
    return OtaSettings(data_dir=tmp_path / "ota", **overrides)  # type: ignore[arg-type]


@pytest.fixture
def offline_dir(tmp_path: Path) -> Path:
    return tmp_path / "offline-root"


@pytest.fixture
async def ota(pool: asyncpg.Pool, tmp_path: Path, offline_dir: Path) -> AsyncIterator[OtaFixture]:
    """An OTA service whose repository holds version 1 of every role (one key per role)."""
    settings = ota_settings(tmp_path, max_artifact_bytes=8 * 1024 * 1024)
    service = OtaService(pool, settings)
    offline = offline_directory(offline_dir)
    online = online_directory(settings.keys_dir)
    key_policy = KeyPolicy.from_settings(settings, root=RoleKeys(1, 1))
    await initialize(service.repository, online, offline, key_policy, wall_now())
    yield OtaFixture(service, offline, online)


async def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]

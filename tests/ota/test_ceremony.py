"""Key ceremonies and the refresh loop against PostgreSQL and real key directories."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from ota.ceremony import (
    ensure_initialized,
    initialize,
    offline_directory,
    online_directory,
    rotate,
)
from ota.errors import KeyStoreError, RepositoryInitializedError, ThresholdNotMetError
from ota.policy import ROOT, SNAPSHOT, TARGETS, TIMESTAMP, KeyPolicy, RoleKeys
from ota.service import OtaService
from ota.tuf_api import Metadata, Root
from tests.ota.conftest import OtaFixture, ota_settings
from tests.ota.memory_repository import wall_now

pytestmark = pytest.mark.integration


async def root_of(ota: OtaFixture, version: int) -> Root:
    body = await ota.service.repository.metadata(ROOT, version)
    assert body is not None
    return Metadata[Root].from_bytes(body).signed


async def test_init_puts_root_keys_offline_and_online_keys_in_the_data_dir(
    ota: OtaFixture,
) -> None:
    root = await root_of(ota, 1)
    offline_files = sorted(p.name for p in ota.offline.path.glob("*.pem"))
    online_files = sorted(p.name for p in ota.online.path.glob("*.pem"))
    assert offline_files == [f"root.{k}.pem" for k in root.roles[ROOT].keyids]
    assert sorted(online_files) == sorted(
        f"{role}.{k}.pem"
        for role in (TARGETS, SNAPSHOT, TIMESTAMP)
        for k in root.roles[role].keyids
    )
    assert not list(ota.settings.data_dir.rglob("root.*.pem"))


async def test_init_twice_is_refused(ota: OtaFixture, tmp_path: Path) -> None:
    with pytest.raises(RepositoryInitializedError):
        await initialize(
            ota.service.repository,
            ota.online,
            offline_directory(tmp_path / "another"),
            KeyPolicy.from_settings(ota.settings),
            wall_now(),
        )


async def test_root_threshold_two_of_three(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = ota_settings(tmp_path)
    service = OtaService(pool, settings)
    offline = offline_directory(tmp_path / "offline")
    policy = KeyPolicy.from_settings(settings, root=RoleKeys(3, 2))
    await initialize(
        service.repository, online_directory(settings.keys_dir), offline, policy, wall_now()
    )
    body = await service.repository.metadata(ROOT, 1)
    assert body is not None
    root = Metadata[Root].from_bytes(body).signed
    assert (len(root.roles[ROOT].keyids), root.roles[ROOT].threshold) == (3, 2)

    # Two of the three key holders present: a rotation goes through.
    spare = sorted(offline.path.glob("root.*.pem"))[0]
    spare.rename(tmp_path / spare.name)
    policy_after = KeyPolicy.from_settings(settings, root=RoleKeys(3, 2))
    result = await rotate(
        service.repository,
        online_directory(settings.keys_dir),
        offline,
        role=TIMESTAMP,
        policy=policy_after,
        now=wall_now(),
    )
    assert result.root_version == 2
    # One of three: refused, nothing stored.
    sorted(offline.path.glob("root.*.pem"))[0].rename(tmp_path / "away.pem")
    with pytest.raises(ThresholdNotMetError):
        await rotate(
            service.repository,
            online_directory(settings.keys_dir),
            offline,
            role=TIMESTAMP,
            policy=policy_after,
            now=wall_now(),
        )
    assert (await service.repository.current())[ROOT].version == 2


async def test_rotating_timestamp_replaces_and_retires_its_key(ota: OtaFixture) -> None:
    before = (await root_of(ota, 1)).roles[TIMESTAMP].keyids
    result = await rotate(
        ota.service.repository,
        ota.online,
        ota.offline,
        role=TIMESTAMP,
        policy=KeyPolicy.from_settings(ota.settings),
        now=wall_now(),
    )
    assert result.root_version == 2
    after = (await root_of(ota, 2)).roles[TIMESTAMP].keyids
    assert set(before).isdisjoint(after)
    assert [s.public_key.keyid for s in ota.online.signers(TIMESTAMP)] == after
    assert (ota.online.path / "retired" / f"timestamp.{before[0]}.pem").exists()
    current = await ota.service.repository.current()
    assert current[TIMESTAMP].version == 2
    # The service (which loads keys afresh) signs the next refresh with the new key.
    refreshed = await ota.service.refresh_if_due(wall_now() + timedelta(hours=13))
    assert refreshed == (TIMESTAMP,)


async def test_rotating_root_retires_the_offline_keys(ota: OtaFixture) -> None:
    old = (await root_of(ota, 1)).roles[ROOT].keyids
    await rotate(
        ota.service.repository,
        ota.online,
        ota.offline,
        role=ROOT,
        policy=KeyPolicy.from_settings(ota.settings),
        now=wall_now(),
    )
    new = (await root_of(ota, 2)).roles[ROOT].keyids
    assert [s.public_key.keyid for s in ota.offline.signers(ROOT)] == new
    assert (ota.offline.path / "retired" / f"root.{old[0]}.pem").exists()


async def test_refresh_if_due_signs_only_what_is_due(ota: OtaFixture) -> None:
    now = wall_now()
    assert await ota.service.refresh_if_due(now) == ()
    assert await ota.service.refresh_if_due(now + timedelta(hours=13)) == (TIMESTAMP,)
    # Already refreshed at +13 h: due again only at +25 h.
    assert await ota.service.refresh_if_due(now + timedelta(hours=14)) == ()
    assert await ota.service.refresh_if_due(now + timedelta(days=4)) == (SNAPSHOT, TIMESTAMP)
    current = await ota.service.repository.current()
    assert (current[SNAPSHOT].version, current[TIMESTAMP].version) == (2, 3)


async def test_concurrent_refreshes_sign_once(ota: OtaFixture, pool: asyncpg.Pool) -> None:
    other_process = OtaService(pool, ota.settings)
    later = wall_now() + timedelta(hours=13)
    results = await asyncio.gather(
        ota.service.refresh_if_due(later), other_process.refresh_if_due(later)
    )
    assert sorted(results) == [(), (TIMESTAMP,)]
    assert (await ota.service.repository.current())[TIMESTAMP].version == 2


class SteppingClock:
    def __init__(self, start_ms: int) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms


async def test_the_service_loop_refreshes_on_its_clock(ota: OtaFixture, pool: asyncpg.Pool) -> None:
    clock = SteppingClock(int(wall_now().timestamp() * 1000))
    settings = ota.settings.model_copy(update={"refresh_interval_s": 0.05})
    service = OtaService(pool, settings, clock=clock)
    stop = asyncio.Event()
    loop = asyncio.create_task(service.run(stop))
    clock.ms += 13 * 3600 * 1000
    for _attempt in range(100):
        if (await service.repository.current())[TIMESTAMP].version == 2:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert (await service.repository.current())[TIMESTAMP].version == 2
    assert service.last_refresh_error is None


async def test_the_embedded_runtime_initializes_once(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = ota_settings(tmp_path)
    service = OtaService(pool, settings)
    offline_dir = tmp_path / "ota-offline-root"
    created = await ensure_initialized(service.repository, settings, offline_dir, wall_now())
    assert created is not None and created.root_version == 1
    assert len(list(offline_dir.glob("root.*.pem"))) == 1
    again = await ensure_initialized(service.repository, settings, offline_dir, wall_now())
    assert again is None
    assert (await service.repository.current())[ROOT].version == 1
    with pytest.raises(KeyStoreError):
        await ensure_initialized(
            OtaService(pool, ota_settings(tmp_path / "other")).repository,
            ota_settings(tmp_path / "other"),
            tmp_path / "other" / "ota" / "root",
            wall_now(),
        )

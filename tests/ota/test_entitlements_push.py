"""The entitlement push service against the real database, with an in-memory publisher: what it
signs, when it pushes (a change, a car coming online), retries, re-issues of stale documents, the
car's acknowledgement, and the wake-up by NOTIFY."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from api.vehicle_registry import VehicleRegistry, VehicleSpec
from ingest.events import VehicleEvent
from ingest.store import Batch, PresenceUpdate, TelemetryStore
from ota.entitlements.errors import EntitlementKeyMissingError, EntitlementPushError
from ota.entitlements.keys import EntitlementKeys
from ota.entitlements.push import EntitlementPusher
from ota.entitlements.settings import EntitlementSettings
from ota.entitlements.store import EntitlementGrant, EntitlementStore
from protocol.catalogue import Powertrain
from protocol.entitlements import (
    EntitlementDocument,
    EntitlementKind,
    command_id,
    trusted_keys_from_hex,
    verify_document,
)
from protocol.messages import CommandMessage, CommandType
from protocol.vin import Vin
from tests.api.customer_platform import FakeClock

VIN = "WVWZZZ1JZXW000001"
OTHER = "WVWZZZ1JZXW000002"
DAY = timedelta(days=1)


@dataclass
class Publisher:
    """Records what would go to the broker; ``fail`` makes the next publishes fail."""

    sent: list[tuple[str, CommandMessage]] = field(default_factory=list)
    fail: int = 0
    closed: bool = False
    published: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(self, vin: str, command: CommandMessage) -> None:
        if self.fail:
            self.fail -= 1
            raise EntitlementPushError("broker unavailable")
        self.sent.append((vin, command))
        self.published.set()

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Setup:
    pool: asyncpg.Pool
    pusher: EntitlementPusher
    publisher: Publisher
    keys: EntitlementKeys
    clock: FakeClock
    store: EntitlementStore

    def verified(self, index: int = -1, vin: str = VIN) -> EntitlementDocument:
        sent_vin, command = self.publisher.sent[index]
        assert sent_vin == vin and command.type is CommandType.ENTITLEMENTS
        trusted = trusted_keys_from_hex(self.keys.trusted_keys())
        document = verify_document(
            command.payload["document"], trusted, vin=vin, now_ms=self.clock.now_ms()
        )
        assert command.id == command_id(vin, document.version)
        return document

    async def grant(self, feature: str, vin: str = VIN, **kw: object) -> int:
        kind = kw.pop("kind", EntitlementKind.PURCHASE)
        grant = EntitlementGrant(feature=feature, kind=kind, **kw)  # type: ignore[arg-type]
        return (await self.store.grant(vin, grant, self.clock.now())).id

    async def head(self, vin: str = VIN) -> asyncpg.Record:
        row = await self.pool.fetchrow("SELECT * FROM ota_entitlement_heads WHERE vin = $1", vin)
        assert row is not None
        return row

    async def came_online(self, vin: str = VIN) -> None:
        """What ingest stores for a presence ``online``."""
        batch = Batch()
        batch.presence.append(PresenceUpdate(vin, True, self.clock.now(), retained=False))
        await TelemetryStore(self.pool).write(batch)


@pytest.fixture
async def setup(pool: asyncpg.Pool, tmp_path: Path) -> Setup:
    registry = VehicleRegistry(pool)
    for vin in (VIN, OTHER):
        await registry.register(VehicleSpec(Vin(vin), "VW", "ID.3", 2024, Powertrain.BEV))
    keys = EntitlementKeys(tmp_path / "keys")
    keys.ensure()
    publisher = Publisher()
    clock = FakeClock()
    settings = EntitlementSettings(retry_base_s=10, poll_interval_s=30)
    pusher = EntitlementPusher(pool, keys, publisher, settings=settings, clock=clock)
    return Setup(pool, pusher, publisher, keys, clock, EntitlementStore(pool))


async def test_a_grant_is_signed_pushed_once_and_verifies_in_the_car(setup: Setup) -> None:
    await setup.grant("heated_seats")
    await setup.grant("adaptive_cruise", valid_until=setup.clock.now() + 30 * DAY)
    assert await setup.pusher.push_due() == 1  # two changes, one push of the newest
    document = setup.verified()
    assert document.version == 2
    assert document.active_features(setup.clock.now_ms()) == {"heated_seats", "adaptive_cruise"}
    assert await setup.pusher.push_due() == 0  # nothing due any more
    head = await setup.head()
    assert (head["signed_version"], head["pushed_version"]) == (2, 2)
    assert head["pushed_requests"] == head["push_requests"]


async def test_a_revocation_is_the_next_version_without_the_feature(setup: Setup) -> None:
    seats = await setup.grant("heated_seats")
    await setup.grant("adaptive_cruise")
    await setup.pusher.push_due()
    await setup.store.revoke(VIN, seats, setup.clock.now())
    await setup.pusher.push_due()
    document = setup.verified()
    assert document.version == 3
    assert document.active_features(setup.clock.now_ms()) == {"adaptive_cruise"}
    stored = await setup.pool.fetch(
        "SELECT version FROM ota_entitlement_documents WHERE vin = $1 ORDER BY version", VIN
    )
    assert [r["version"] for r in stored] == [2, 3]  # every signed version is kept


async def test_a_car_coming_online_gets_its_newest_document_again(setup: Setup) -> None:
    await setup.grant("heated_seats")
    await setup.pusher.push_due()
    await setup.came_online(OTHER)  # a car without entitlements: nothing to push
    setup.clock.advance(timedelta(minutes=1))
    await setup.came_online()
    assert await setup.pusher.push_due() == 1
    first, again = setup.publisher.sent
    assert again[1].id == first[1].id  # the same version: the car drops it as a repeat
    assert again[1].payload == first[1].payload


async def test_a_failed_push_is_retried_after_a_backoff(setup: Setup) -> None:
    await setup.grant("heated_seats")
    setup.publisher.fail = 1
    await setup.pusher.push_due()
    assert setup.publisher.sent == [] and setup.pusher.stats.failed == 1
    head = await setup.head()
    assert head["last_error"].startswith("entitlement_push_failed")
    assert await setup.pusher.push_due() == 0  # not yet: backing off
    setup.clock.advance(timedelta(seconds=11))
    assert await setup.pusher.push_due() == 1
    assert setup.verified().version == 1
    head = await setup.head()
    assert head["last_error"] is None and head["attempts"] == 0


async def test_a_stale_document_is_re_signed_as_a_new_version_for_a_returning_car(
    setup: Setup,
) -> None:
    await setup.grant("heated_seats")
    await setup.pusher.push_due()
    setup.clock.advance(10 * DAY)  # away longer than the 7-day document lifetime
    await setup.came_online()
    await setup.pusher.push_due()
    document = setup.verified()  # verifies at the car's clock: not expired
    assert document.version == 2
    assert document.active_features(setup.clock.now_ms()) == {"heated_seats"}


async def test_an_expired_entitlement_is_left_out_of_the_next_document(setup: Setup) -> None:
    await setup.grant(
        "performance_boost", kind=EntitlementKind.TRIAL, valid_until=setup.clock.now() + DAY
    )
    await setup.grant("heated_seats")
    await setup.pusher.push_due()
    setup.clock.advance(2 * DAY)
    await setup.grant("adaptive_cruise")
    await setup.pusher.push_due()
    names = [f.name for f in setup.verified().features]
    assert names == ["adaptive_cruise", "heated_seats"]


async def test_the_cars_acknowledgement_records_the_applied_version(setup: Setup) -> None:
    await setup.grant("heated_seats")
    await setup.pusher.push_due()

    async def ack(vin: str, seq: int, ident: str) -> None:
        body = f'{{"seq":{seq},"ts":{setup.clock.now_ms()},"type":"command_ack","id":"{ident}"}}'
        batch = Batch()
        batch.events.append(
            (vin, VehicleEvent(seq, setup.clock.now_ms(), "command_ack", None, None, body))
        )
        await TelemetryStore(setup.pool).write(batch)

    await ack(OTHER, 1, command_id(VIN, 1))  # another car cannot acknowledge for this one
    await ack(VIN, 2, command_id(VIN, 7))  # nor acknowledge a version never signed
    assert (await setup.head())["acknowledged_version"] == 0
    await ack(VIN, 3, command_id(VIN, 1))
    head = await setup.head()
    assert head["acknowledged_version"] == 1 and head["acknowledged_at"] is not None


async def test_entitlements_beyond_one_document_are_reported_not_looped_on(setup: Setup) -> None:
    await setup.pool.execute(
        "INSERT INTO entitlements (vin, feature, kind, valid_from)"
        " SELECT $1, 'feature_' || n, 'purchase', now() FROM generate_series(1, 257) AS n",
        VIN,
    )
    await setup.grant("heated_seats", vin=OTHER)
    assert await setup.pusher.push_due() == 1  # OTHER is pushed; VIN is set aside
    assert [vin for vin, _ in setup.publisher.sent] == [OTHER]
    head = await setup.head()
    assert head["last_error"].startswith("entitlement_unsignable")
    assert await setup.pusher.push_due() == 0


async def test_without_a_key_nothing_is_signed(pool: asyncpg.Pool, tmp_path: Path) -> None:
    pusher = EntitlementPusher(pool, EntitlementKeys(tmp_path / "none"), Publisher())
    with pytest.raises(EntitlementKeyMissingError):
        await pusher.push_due()


async def test_the_service_wakes_on_a_change_and_stops_cleanly(setup: Setup) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(setup.pusher.run(stop))
    await asyncio.wait_for(setup.pusher.listening.wait(), 10)
    await setup.grant("heated_seats")  # the poll interval is 30 s: only NOTIFY is this fast
    await asyncio.wait_for(setup.publisher.published.wait(), 5)
    assert setup.verified().active_features(setup.clock.now_ms()) == {"heated_seats"}
    stop.set()
    await asyncio.wait_for(task, 10)
    assert setup.publisher.closed


def test_the_key_is_created_once_with_private_file_modes(tmp_path: Path) -> None:
    keys = EntitlementKeys(tmp_path / "keys")
    created = keys.ensure()
    assert keys.ensure()[0].public_key.keyid == created[0].public_key.keyid
    (key_file,) = (tmp_path / "keys").glob("entitlements.*.pem")
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    trusted = keys.trusted_keys()
    assert (
        list(trusted) == [created[0].public_key.keyid]
        and len(trusted[created[0].public_key.keyid]) == 64
    )


def test_settings_refuse_a_lease_shorter_than_a_publish() -> None:
    with pytest.raises(ValueError, match="LEASE_S"):
        EntitlementSettings(lease_s=5, publish_timeout_s=10)

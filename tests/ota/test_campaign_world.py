"""Helpers shared by the campaign, rollout, director and attack tests (no tests here): vehicles
in the registry, published images, parked state, a director, a recording command sink and the
car's own signed version reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from api.vehicle_registry import Ecu, VehicleRegistry, VehicleSpec
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from ota.artifact_store import Artifact
from ota.campaigns.model import CampaignSpec, OwnerInfo
from ota.campaigns.preconditions import LOW_VOLTAGE, SPEED, TRACTION_SOC
from ota.campaigns.targeting import Targeting
from ota.ceremony import offline_directory
from ota.director import Director
from ota.director_ceremony import initialize_director, online_director_directory
from ota.image_target import ImageSpec
from ota.policy import KeyPolicy, RoleKeys
from ota.rollout import Wave
from ota.status_keys import register_key
from protocol.catalogue import Powertrain
from protocol.messages import CommandMessage
from protocol.vin import Vin
from simulator.ota_client.report import EcuKey, Progress, new_nonce, version_report
from simulator.ota_client.verify import EcuState, InstalledImage
from tests.ota.conftest import OtaFixture, chunks_of

HARDWARE_ID = "VOLKSWAG-GOLF-TCU-H1"
INFO = OwnerInfo("Security fixes for the telematics unit", 15, ("remote services",))
SINGLE = RoleKeys(1, 1)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def vins(count: int, prefix: str = "WVWZZZ1JZXW") -> list[str]:
    return [f"{prefix}{n:06d}" for n in range(1, count + 1)]


def tcu(vin: str, version: str = "2.0.0", hardware_id: str = HARDWARE_ID) -> Ecu:
    return Ecu(f"TCU-{vin[-6:]}", hardware_id, version)


async def register(
    pool: asyncpg.Pool,
    vin: str,
    *,
    ecus: Sequence[Ecu] | None = None,
    brand: str = "Volkswagen",
    model: str = "Golf",
    year: int = 2022,
    powertrain: Powertrain = Powertrain.ICE,
    secret: str | None = None,
) -> str:
    """Register a vehicle; returns its device secret."""
    spec = VehicleSpec(Vin(vin), brand, model, year, powertrain, tuple(ecus or (tcu(vin),)))
    return (await VehicleRegistry(pool).register(spec, secret=secret)).password


async def parked(pool: asyncpg.Pool, vins: Sequence[str], at: datetime, **values: float) -> None:
    """Latest state through ingest's own writer: parked, 12.6 V, 80 % unless told otherwise."""
    signals = {SPEED: 0.0, LOW_VOLTAGE: 12.6, TRACTION_SOC: 80.0}
    signals.update({name: v for name, v in values.items()})
    ts = int(at.timestamp() * 1000)
    batch = Batch()
    for vin in vins:
        batch.add_readings(vin, [Reading(s, ts, v, None) for s, v in signals.items()])
    await TelemetryStore(pool).write(batch)


async def publish(
    ota: OtaFixture,
    version: str,
    *,
    counter: int,
    hardware_ids: Sequence[str] = (HARDWARE_ID,),
    name: str = "tcu-fw",
    data: bytes | None = None,
) -> Artifact:
    spec = ImageSpec(name, version, tuple(hardware_ids), counter)
    content = data or f"{name} {version} ".encode() * 500
    artifact = await ota.service.artifacts.upload(spec, chunks_of(content), now())
    return await ota.service.publish(artifact.id, now())


async def director(pool: asyncpg.Pool, ota: OtaFixture, tmp_path: Path) -> Director:
    """The director of ``ota``'s data directory, initialized (its root key in tmp_path)."""
    repository = Director.from_settings(pool, ota.settings)
    await initialize_director(
        repository,
        online_director_directory(repository.keys.path),
        offline_directory(tmp_path / "director-root"),
        KeyPolicy(SINGLE, SINGLE, SINGLE, SINGLE),
        now(),
    )
    return repository


def spec(
    target: str = "tcu-fw-2.1.0",
    *,
    waves: Sequence[Wave] = (Wave(1.0),),
    targeting: Targeting | None = None,
    name: str = "TCU 2.1.0",
    **kw: object,
) -> CampaignSpec:
    return CampaignSpec(
        name=name,
        target_path=target,
        owner_info=INFO,
        waves=tuple(waves),
        targeting=targeting or Targeting(),
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class RecordingSink:
    """The scheduler's command sink, in memory: what would have gone to each car."""

    sent: list[tuple[str, CommandMessage]] = field(default_factory=list)
    fail: bool = False

    async def send(self, vin: str, command: CommandMessage) -> None:
        from ota.rollout_mqtt import CommandNotSentError

        if self.fail:
            raise CommandNotSentError("broker away")
        self.sent.append((vin, command))

    def to(self, vin: str) -> list[CommandMessage]:
        return [c for v, c in self.sent if v == vin]


@dataclass
class ReportingCar:
    """A car's report signing as the simulator does it, for tests that drive reports."""

    vin: str
    key: EcuKey
    ecus: list[EcuState]
    counter: int = 0
    nonces: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, vin: str, version: str = "2.0.0") -> ReportingCar:
        ecu = EcuState(f"TCU-{vin[-6:]}", HARDWARE_ID, InstalledImage(version, 0))
        return cls(vin, EcuKey.derived(f"test:{vin}"), [ecu])

    async def register_key(self, pool: asyncpg.Pool) -> None:
        await register_key(pool, self.vin, self.key.public_bytes, now())

    def report(
        self,
        campaign: uuid.UUID | None = None,
        status: str | None = None,
        *,
        code: str | None = None,
        counter: int | None = None,
        at: datetime | None = None,
    ) -> bytes:
        self.counter = counter if counter is not None else self.counter + 1
        nonce = new_nonce()
        self.nonces.append(nonce)
        progress = Progress(str(campaign), status, code) if campaign and status else None
        return version_report(
            self.key,
            vin=self.vin,
            counter=self.counter,
            nonce=nonce,
            ts_ms=int((at or now()).timestamp() * 1000),
            ecus=self.ecus,
            progress=progress,
        )

"""Issue 9's attacks, each a scenario against the live service (API with image repository and
director on uvicorn, broker, rollout scheduler, PostgreSQL) and the car's OTA client, which
fetches over HTTP through a man in the middle the test controls. Each attack must be refused
by the car, reported to the backend (the update ``failed`` with the refusal's code), and leave
the car able to take the next valid update, which it then installs.

The man in the middle rewrites what the real service answered (tampering, replaying older
files, swapping files, endless data) or, to stand for a compromised director key, re-signs the
director's metadata with the director's own online keys: Uptane's point is that this key
alone cannot make a car install anything the image repository does not vouch for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.ota_rollout import OtaStack, ota_stack
from ota.keys import generate_key, signer_for
from ota.policy import SNAPSHOT, TARGETS, TIMESTAMP
from ota.rollout_settings import RolloutSettings
from ota.settings import OtaSettings
from ota.tuf_api import Metadata, MetaFile, Signer, Snapshot, TargetFile, Targets, Timestamp
from protocol.clock import utc_from_ms
from simulator.ota_client.client import OtaClient, OtaTransport, UpdateOutcome
from simulator.ota_client.fetch import HttpFetcher, HttpMetadataSource, basic_auth
from simulator.ota_client.link import MqttOtaLink
from simulator.ota_client.report import EcuKey
from simulator.ota_client.trust import RepositoryTrust
from simulator.ota_client.tuf_names import FetcherInterface
from simulator.ota_client.verify import EcuState, InstalledImage
from tests.ota.test_campaign_world import HARDWARE_ID, parked, register, tcu

pytestmark = pytest.mark.integration
VIN_A, VIN_B = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"
WAIT_S = 30.0
Rewrite = Callable[[str, bytes], Iterator[bytes]]


@dataclass
class MovableClock:
    ms: int = field(default_factory=lambda: int(datetime.now(UTC).timestamp() * 1000))

    def now_ms(self) -> int:
        return self.ms

    def now(self) -> datetime:
        return utc_from_ms(self.ms)


class Mitm(FetcherInterface):
    """Forwards to the real fetcher; a rule (by file name) rewrites what came back."""

    def __init__(self, inner: FetcherInterface, redirect: Callable[[str], str] | None = None):
        self.original = self.inner = inner
        self.redirect = redirect or (lambda url: url)
        self.rules: dict[str, Rewrite] = {}
        self.seen: list[str] = []

    def leave(self) -> None:
        """The man in the middle goes away: the car talks to the service again."""
        self.rules.clear()
        self.inner, self.redirect = self.original, (lambda url: url)

    def _fetch(self, url: str) -> Iterator[bytes]:
        url = self.redirect(url)
        name = url.rsplit("/", 1)[-1]
        self.seen.append(name)
        rule = next((r for key, r in self.rules.items() if key == name or key in name), None)
        real = self.real(url)
        if rule is None:
            yield real
        else:
            yield from rule(name, real)

    def real(self, url: str) -> bytes:
        return b"".join(self.inner.fetch(url))


@dataclass
class Car:
    vin: str
    client: OtaClient
    link: MqttOtaLink
    image: Mitm
    director: Mitm
    targets: Mitm
    task: asyncio.Task[None]

    async def outcome(self, count: int) -> UpdateOutcome:
        """The car's ``count``-th update outcome, once it is there."""
        async with asyncio.timeout(WAIT_S):
            while len(self.client.outcomes) < count:  # noqa: ASYNC110 - the client has no event
                await asyncio.sleep(0.05)
        return self.client.outcomes[count - 1]


@dataclass
class World:
    stack: OtaStack
    clock: MovableClock
    stop: asyncio.Event
    cars: list[Car] = field(default_factory=list)

    async def car(self, vin: str) -> Car:
        stack = self.stack
        password = await register(stack.pool, vin, ecus=[tcu(vin)])
        key = EcuKey.derived(f"attack-test:{vin}")
        status, _ = await stack.call(
            "PUT", f"/v1/vehicles/{vin}/ota/ecu-key", {"public_key": key.public_bytes.hex()}
        )
        assert status == 200
        await parked(stack.pool, [vin], self.clock.now())
        auth = basic_auth(vin, password)
        image_root = await stack.fetch("/ota/image/1.root.json")
        director_root = await stack.fetch(f"/ota/director/{vin}/1.root.json", auth)
        api = stack.api_url
        image, targets = Mitm(HttpFetcher(stack.http)), Mitm(HttpFetcher(stack.http))
        director = Mitm(HttpFetcher(stack.http, headers=auth))
        link = MqttOtaLink(vin, password, stack.broker())
        client = OtaClient(
            vin=vin,
            ecus=[EcuState(f"TCU-{vin[-6:]}", HARDWARE_ID, InstalledImage("2.0.0", 0))],
            key=key,
            transport=OtaTransport(
                image=HttpMetadataSource(image, f"{api}/ota/image/"),
                director=HttpMetadataSource(director, f"{api}/ota/director/{vin}/"),
                targets=targets,
                targets_url=f"{api}/ota/image/targets/",
            ),
            publisher=link,
            clock=self.clock,
            image_trust=RepositoryTrust.anchored("image", image_root),
            director_trust=RepositoryTrust.anchored("director", director_root),
        )
        task = asyncio.create_task(link.run(self.stop, client.handle_offer))
        await asyncio.wait_for(link.connected.wait(), WAIT_S)
        await client.report()
        car = Car(vin, client, link, image, director, targets, task)
        self.cars.append(car)
        return car

    async def publish(self, version: str, counter: int) -> dict[str, Any]:
        data = f"tcu-fw {version} ".encode() * 300
        query = f"name=tcu-fw&version={version}&release_counter={counter}&hardware_id={HARDWARE_ID}"
        status, artifact = await self.stack.call("POST", f"/v1/ota/artifacts?{query}", raw=data)
        assert status == 201, artifact
        status, artifact = await self.stack.call(
            "POST", f"/v1/ota/artifacts/{artifact['id']}/publish"
        )
        assert status == 200, artifact
        return dict(artifact)

    async def campaign(self, target: str, vins: Sequence[str]) -> str:
        body = {
            "name": f"to {target}",
            "target": target,
            "targeting": {"vins": list(vins)},
            "owner_info": {"purpose": "Fixes", "duration_min": 5},
        }
        status, created = await self.stack.call("POST", "/v1/ota/campaigns", body)
        assert status == 201, created
        return str(created["id"])

    async def backend(self, campaign_id: str, vin: str, status: str) -> dict[str, Any]:
        """The backend's record of the car's update, once it reached ``status``."""
        async with asyncio.timeout(WAIT_S):
            while True:
                code, update = await self.stack.call(
                    "GET", f"/v1/ota/campaigns/{campaign_id}/vehicles/{vin}"
                )
                assert code == 200, update
                if update["status"] == status:
                    return dict(update)
                await asyncio.sleep(0.05)

    async def retry(self, campaign_id: str, vin: str) -> None:
        """The failure halted the campaign (every car of its only wave failing is above any
        threshold): an operator offers the car the update again and resumes the campaign."""
        async with asyncio.timeout(WAIT_S):
            while True:
                _, campaign = await self.stack.call("GET", f"/v1/ota/campaigns/{campaign_id}")
                if campaign["status"] == "halted":
                    break
                await asyncio.sleep(0.05)
        status, body = await self.stack.call(
            "POST", f"/v1/ota/campaigns/{campaign_id}/vehicles/{vin}/retry"
        )
        assert status == 200, body
        status, body = await self.stack.call("POST", f"/v1/ota/campaigns/{campaign_id}/resume")
        assert status == 200 and body["status"] == "active", body


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@asynccontextmanager
async def world_for(
    pool: asyncpg.Pool, tmp_path: Path, clock: MovableClock, settings: OtaSettings | None
) -> AsyncIterator[World]:
    rollout = RolloutSettings(tick_interval_s=0.1, resend_after_s=600)
    async with ota_stack(pool, tmp_path, clock=clock, rollout=rollout, ota_settings=settings) as s:
        world = World(s, clock, asyncio.Event())
        try:
            yield world
        finally:
            world.stop.set()
            await asyncio.gather(*(car.task for car in world.cars), return_exceptions=True)


# -- the attacker's tools ------------------------------------------------------------------------


def tamper(_: str, real: bytes) -> Iterator[bytes]:
    yield real[:-1] + bytes([real[-1] ^ 0xFF])


def endless(_: str, real: bytes) -> Iterator[bytes]:
    yield real
    while True:
        yield b"\0" * 65536


def replace_with(body: bytes) -> Rewrite:
    def rewrite(_: str, real: bytes) -> Iterator[bytes]:
        yield body

    return rewrite


def resigned(signers: Sequence[Signer], *, keep: int | None = None) -> Rewrite:
    """The same metadata re-signed by ``signers``, or with only ``keep`` of its signatures."""

    def rewrite(_: str, real: bytes) -> Iterator[bytes]:
        md = Metadata.from_bytes(real)
        if keep is not None:
            for keyid in list(md.signatures)[keep:]:
                del md.signatures[keyid]
        else:
            md.signatures.clear()
            for signer in signers:
                md.sign(signer, append=True)
        yield md.to_bytes()

    return rewrite


def meta_file(version: int, body: bytes) -> MetaFile:
    return MetaFile(version, len(body), {"sha256": hashlib.sha256(body).hexdigest()})


def forged_director(
    mitm: Mitm, base: str, keys: Mapping[str, Sequence[Signer]], edit: Callable[[Targets], None]
) -> Rewrite:
    """A compromised director key: the real director files, the targets edited and the chain
    (targets, snapshot, timestamp) re-signed with the director's own online keys."""

    def sign(role: str, md: Metadata[Any]) -> bytes:
        md.signatures.clear()
        for signer in keys[role]:
            md.sign(signer, append=True)
        return md.to_bytes()

    def rewrite(_: str, real: bytes) -> Iterator[bytes]:
        timestamp = Metadata[Timestamp].from_bytes(real)
        snapshot_version = timestamp.signed.snapshot_meta.version
        snapshot = Metadata[Snapshot].from_bytes(
            mitm.real(f"{base}{snapshot_version}.snapshot.json")
        )
        targets_version = snapshot.signed.meta["targets.json"].version
        targets = Metadata[Targets].from_bytes(mitm.real(f"{base}{targets_version}.targets.json"))
        edit(targets.signed)
        targets_body = sign(TARGETS, targets)
        snapshot.signed.meta["targets.json"] = meta_file(targets_version, targets_body)
        snapshot_body = sign(SNAPSHOT, snapshot)
        timestamp.signed.snapshot_meta = meta_file(snapshot_version, snapshot_body)
        mitm.rules[f"{snapshot_version}.snapshot.json"] = replace_with(snapshot_body)
        mitm.rules[f"{targets_version}.targets.json"] = replace_with(targets_body)
        yield sign(TIMESTAMP, timestamp)

    return rewrite


def director_keys(world: World) -> dict[str, list[Signer]]:
    keys = world.stack.director.keys
    return {role: list(keys.signers(role)) for role in (TARGETS, SNAPSHOT, TIMESTAMP)}


def directed(path: str, length: int, sha256: str, serial: str, counter: int) -> TargetFile:
    custom = {
        "name": "tcu-fw",
        "version": path.removeprefix("tcu-fw-"),
        "hardwareIds": [HARDWARE_ID],
        "releaseCounter": counter,
        "ecuIdentifiers": {serial: {"hardwareId": HARDWARE_ID}},
    }
    return TargetFile(length, {"sha256": sha256}, path, {"custom": custom})


# -- the scenarios -------------------------------------------------------------------------------


async def attacked_then_recovered(
    world: World, arm: Callable[[World, Car], Any], code: str, *, victim: str = VIN_A
) -> None:
    """A campaign to 2.1.0 meets the armed attack: refused with ``code`` and reported; the
    man in the middle gone, a retry installs 2.1.0."""
    await world.publish("2.1.0", 3)
    cars = {vin: await world.car(vin) for vin in {VIN_A, victim}}
    car = cars[victim]
    armed = arm(world, car)
    if asyncio.iscoroutine(armed):
        await armed
    campaign = await world.campaign("tcu-fw-2.1.0", sorted(cars))
    outcome = await car.outcome(1)
    assert (outcome.status, outcome.code) == ("failed", code)
    update = await world.backend(campaign, victim, "failed")
    assert update["result_code"] == code
    assert car.client.state()[0].installed.version == "2.0.0"  # nothing was installed
    for mitm in (car.image, car.director, car.targets):
        mitm.leave()
    await world.retry(campaign, victim)
    assert (await car.outcome(2)).status == "installed"
    update = await world.backend(campaign, victim, "installed")
    assert update["attempt"] == 2
    assert car.client.state()[0].installed.path == "tcu-fw-2.1.0"
    status, software = await world.stack.call("GET", f"/v1/vehicles/{victim}/software")
    assert status == 200 and software["ecus"][0]["target"] == "tcu-fw-2.1.0"


def arm_tampered_image(world: World, car: Car) -> None:
    car.targets.rules["tcu-fw-2.1.0"] = tamper


def arm_endless_image(world: World, car: Car) -> None:
    car.targets.rules["tcu-fw-2.1.0"] = endless


def arm_unknown_key(world: World, car: Car) -> None:
    attacker = signer_for(generate_key())
    car.director.rules["timestamp.json"] = resigned([attacker])


def arm_below_threshold(world: World, car: Car) -> None:
    car.image.rules["timestamp.json"] = resigned([], keep=1)  # 1 of the 2 signatures needed


async def arm_replayed_timestamp(world: World, car: Car) -> None:
    old = await world.stack.fetch("/ota/image/timestamp.json")
    await world.publish("2.1.1", 3)  # a newer timestamp the car then trusts
    await asyncio.to_thread(
        car.client.image_trust.refresh, car.client.transport.image, world.clock.now()
    )
    car.image.rules["timestamp.json"] = replace_with(old)


async def arm_replayed_snapshot(world: World, car: Car) -> None:
    timestamp = json.loads(await world.stack.fetch("/ota/image/timestamp.json"))
    version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
    old = await world.stack.fetch(f"/ota/image/{version}.snapshot.json")
    await world.publish("2.1.1", 3)
    car.image.rules[f"{version + 1}.snapshot.json"] = replace_with(old)


async def arm_mix_and_match(world: World, car: Car) -> None:
    old_targets = await world.stack.fetch("/ota/image/1.targets.json")  # lists nothing
    car.image.rules[".targets.json"] = replace_with(old_targets)


async def arm_frozen(world: World, car: Car) -> None:
    frozen = await world.stack.fetch("/ota/image/timestamp.json")
    world.clock.ms += int(timedelta(days=2).total_seconds() * 1000)
    await world.stack.ota.refresh_if_due(world.clock.now())  # the real repository moves on
    car.image.rules["timestamp.json"] = replace_with(frozen)


def arm_director_names_unknown_image(world: World, car: Car) -> None:
    serial = car.client.state()[0].serial
    ghost = directed("tcu-fw-6.6.6", 4096, secrets.token_hex(32), serial, 9)

    def edit(targets: Targets) -> None:
        targets.targets = {ghost.path: ghost}

    base = f"{world.stack.api_url}/ota/director/{car.vin}/"
    car.director.rules["timestamp.json"] = forged_director(
        car.director, base, director_keys(world), edit
    )


def arm_replay_to_another_car(world: World, car: Car) -> None:
    # Car B is served car A's director metadata: A's path, fetched with A's credentials.
    a = next(c for c in world.cars if c.vin == VIN_A)
    car.director.inner = a.director.inner
    car.director.redirect = lambda url: url.replace(f"/director/{VIN_B}/", f"/director/{VIN_A}/")


SCENARIOS: list[tuple[str, Callable[[World, Car], Any], str, OtaSettings | None, str]] = [
    ("tampered artifact", arm_tampered_image, "image_hash_mismatch", None, VIN_A),
    ("endless data", arm_endless_image, "image_too_long", None, VIN_A),
    ("unknown key", arm_unknown_key, "metadata_unsigned", None, VIN_A),
    (
        "below threshold",
        arm_below_threshold,
        "metadata_unsigned",
        OtaSettings(timestamp_threshold=2),
        VIN_A,
    ),
    ("replayed timestamp", arm_replayed_timestamp, "metadata_rollback", None, VIN_A),
    ("replayed snapshot", arm_replayed_snapshot, "metadata_mismatch", None, VIN_A),
    ("expired metadata (freeze)", arm_frozen, "metadata_expired", None, VIN_A),
    ("mix and match", arm_mix_and_match, "metadata_mismatch", None, VIN_A),
    (
        "director names an unknown image",
        arm_director_names_unknown_image,
        "image_not_in_image_repository",
        None,
        VIN_A,
    ),
    (
        "car A's targets replayed to car B",
        arm_replay_to_another_car,
        "director_vin_mismatch",
        None,
        VIN_B,
    ),
]


@pytest.mark.parametrize(
    ("arm", "code", "settings", "victim"),
    [
        pytest.param(arm, code, settings, victim, id=name)
        for name, arm, code, settings, victim in SCENARIOS
    ],
)
async def test_attack_is_refused_reported_and_the_car_takes_the_next_update(
    pool: asyncpg.Pool,
    tmp_path: Path,
    clock: MovableClock,
    arm: Callable[[World, Car], Any],
    code: str,
    settings: OtaSettings | None,
    victim: str,
) -> None:
    async with world_for(pool, tmp_path, clock, settings) as world:
        await attacked_then_recovered(world, arm, code, victim=victim)


async def test_a_lower_release_counter_is_refused(
    pool: asyncpg.Pool, tmp_path: Path, clock: MovableClock
) -> None:
    async with world_for(pool, tmp_path, clock, None) as world:
        older = await world.publish("2.0.5", 2)
        await world.publish("2.1.0", 3)
        car = await world.car(VIN_A)
        first = await world.campaign("tcu-fw-2.1.0", [VIN_A])
        assert (await car.outcome(1)).status == "installed"
        await world.backend(first, VIN_A, "installed")
        # A compromised director key names the older image (genuine, in the image
        # repository, hashes agreeing) instead of the newer one the campaign is for.
        await world.publish("2.2.0", 4)
        serial = car.client.state()[0].serial
        old = directed("tcu-fw-2.0.5", older["length"], older["sha256"], serial, 2)

        def edit(targets: Targets) -> None:
            targets.targets = {old.path: old}

        base = f"{world.stack.api_url}/ota/director/{VIN_A}/"
        car.director.rules["timestamp.json"] = forged_director(
            car.director, base, director_keys(world), edit
        )
        second = await world.campaign("tcu-fw-2.2.0", [VIN_A])
        outcome = await car.outcome(2)
        assert (outcome.status, outcome.code) == ("failed", "release_counter_rollback")
        assert (await world.backend(second, VIN_A, "failed"))["result_code"] == outcome.code
        assert car.client.state()[0].installed.version == "2.1.0"
        car.director.leave()
        await world.retry(second, VIN_A)
        assert (await car.outcome(3)).status == "installed"
        assert car.client.state()[0].installed.release_counter == 4

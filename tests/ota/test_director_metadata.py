"""The director against the real database, read by the car's own TUF trust (python-tuf's
TrustedMetadataSet): per-vehicle targets bound to the VIN and the last report's nonce, naming
the accepted campaign's image and ECU; signed only when the plan changed or a role is due;
one version line per vehicle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from ota.campaigns.creation import create_campaign
from ota.campaigns.updates import apply
from ota.director import Director
from ota.status_ingest import StatusIngest
from ota.status_machine import UpdateStatus
from simulator.ota_client.trust import RepositoryTrust
from simulator.ota_client.tuf_names import DownloadHTTPError, Targets
from tests.ota.conftest import OtaFixture
from tests.ota.test_campaign_world import (
    HARDWARE_ID,
    ReportingCar,
    director,
    now,
    publish,
    register,
    spec,
)

pytestmark = pytest.mark.integration
VIN_A, VIN_B = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"
S = UpdateStatus


@dataclass
class StoredSource:
    """What the director serves to one VIN, read from the database beforehand (the trust
    module is synchronous; the HTTP route is tested in test_director_http.py)."""

    files: Mapping[str, bytes]

    def metadata(self, role: str, version: int | None, max_bytes: int) -> bytes:
        name = f"{version}.{role}.json" if version is not None else f"{role}.json"
        if name not in self.files:
            raise DownloadHTTPError(f"no {name}", 404)
        return self.files[name]


async def served(repository: Director, pool: asyncpg.Pool, vin: str, at: datetime) -> StoredSource:
    files = {"timestamp.json": await repository.timestamp(vin, at)}
    for row in await pool.fetch("SELECT version, body FROM ota_director_root"):
        files[f"{row['version']}.root.json"] = bytes(row["body"])
    for row in await pool.fetch(
        "SELECT role, version, body FROM ota_director_metadata WHERE vin = $1", vin
    ):
        files[f"{row['version']}.{row['role']}.json"] = bytes(row["body"])
    return StoredSource(files)


async def versions(pool: asyncpg.Pool, vin: str) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT role, max(version) AS v FROM ota_director_metadata WHERE vin = $1 GROUP BY role",
        vin,
    )
    return {r["role"]: r["v"] for r in rows}


def custom(targets: Targets) -> dict[str, object]:
    value = targets.unrecognized_fields["custom"]
    assert isinstance(value, dict)
    return value


async def test_director_targets_name_the_accepted_image_for_this_vehicle_only(
    pool: asyncpg.Pool, ota: OtaFixture, tmp_path: Path
) -> None:
    repository = await director(pool, ota, tmp_path)
    image = await publish(ota, "2.1.0", counter=3)
    for vin in (VIN_A, VIN_B):
        await register(pool, vin)
    car = ReportingCar.of(VIN_A)
    await car.register_key(pool)
    await StatusIngest(pool).handle(VIN_A, car.report(), now())
    campaign = await create_campaign(pool, spec(), now())
    root = (await repository.root(1)).body  # type: ignore[union-attr]
    trust = RepositoryTrust.anchored("director", root)
    t = now()

    # Assigned but not yet accepted: nothing to install, but the file is still the car's.
    targets = trust.refresh(await served(repository, pool, VIN_A, t), t)
    assert targets.targets == {}
    assert custom(targets) == {
        "vin": VIN_A,
        "reportNonce": car.nonces[-1],
        "reportCounter": car.counter,
        "campaign": None,
    }
    async with pool.acquire() as conn:
        await apply(conn, campaign.id, VIN_A, S.OFFERED, t)
        await apply(conn, campaign.id, VIN_A, S.ACCEPTED, t)
    targets = trust.refresh(await served(repository, pool, VIN_A, t), t)
    (path,) = targets.targets
    target = targets.targets[path]
    assert path == "tcu-fw-2.1.0"
    assert (target.length, target.hashes) == (image.length, {"sha256": image.sha256})
    assert target.custom["ecuIdentifiers"] == {f"TCU-{VIN_A[-6:]}": {"hardwareId": HARDWARE_ID}}
    assert target.custom["releaseCounter"] == 3
    assert custom(targets)["campaign"] == str(campaign.id)

    # The other car's line is its own: its file names it, and lists nothing for it.
    other = RepositoryTrust.anchored("director", root)
    b_targets = other.refresh(await served(repository, pool, VIN_B, t), t)
    assert custom(b_targets)["vin"] == VIN_B and b_targets.targets == {}


async def test_metadata_is_signed_only_when_the_plan_changes_or_a_role_is_due(
    pool: asyncpg.Pool, ota: OtaFixture, tmp_path: Path
) -> None:
    repository = await director(pool, ota, tmp_path)
    await publish(ota, "2.1.0", counter=3)
    await register(pool, VIN_A)
    campaign = await create_campaign(pool, spec(), now())
    t = now()
    first = await repository.timestamp(VIN_A, t)
    assert await versions(pool, VIN_A) == {"targets": 1, "snapshot": 1, "timestamp": 1}
    assert await repository.timestamp(VIN_A, t + timedelta(minutes=5)) == first
    async with pool.acquire() as conn:
        await apply(conn, campaign.id, VIN_A, S.OFFERED, t)
        await apply(conn, campaign.id, VIN_A, S.ACCEPTED, t)
    await repository.timestamp(VIN_A, t)
    assert await versions(pool, VIN_A) == {"targets": 2, "snapshot": 2, "timestamp": 2}
    # More than half of a day gone: snapshot and timestamp (a day each) are re-signed, the
    # targets (a week) are not.
    later = t + timedelta(hours=13)
    await repository.timestamp(VIN_A, later)
    assert await versions(pool, VIN_A) == {"targets": 2, "snapshot": 3, "timestamp": 3}
    # The car, whose clock says the same, accepts the whole line.
    root = (await repository.root(1)).body  # type: ignore[union-attr]
    trust = RepositoryTrust.anchored("director", root)
    assert trust.refresh(await served(repository, pool, VIN_A, later), later).version == 2
    # Installed: the director lists nothing more.
    async with pool.acquire() as conn:
        await apply(conn, campaign.id, VIN_A, S.INSTALLED, later)
    after = trust.refresh(await served(repository, pool, VIN_A, later), later)
    assert after.targets == {} and after.version == 3

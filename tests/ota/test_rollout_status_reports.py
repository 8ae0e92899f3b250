"""Version reports on ``ota/status``: the car's signed report (built by the simulator's own
code) is verified against its registered ECU key, replays and foreign or forged reports are
refused with a reason, the installed-software record and its history follow the reports, and
a report's progress moves the campaign update through the status machine."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest

from ota.campaigns.creation import create_campaign
from ota.campaigns.updates import apply, load_update
from ota.software_record import software_history, vehicle_software
from ota.status_ingest import StatusIngest
from ota.status_machine import UpdateStatus
from ota.status_report import StatusReportError, verify_report
from simulator.ota_client.verify import InstalledImage
from tests.ota.conftest import OtaFixture
from tests.ota.test_campaign_world import ReportingCar, now, publish, register, spec, tcu

pytestmark = pytest.mark.integration
VIN = "WVWZZZ1JZXW000001"
S = UpdateStatus


def test_the_verifier_refuses_what_it_must_without_a_database() -> None:
    car = ReportingCar.of(VIN)
    keys = {car.key.keyid: car.key.public_bytes}
    good = car.report()
    assert verify_report(good, vin=VIN, keys=keys, last_counter=None, now=now()).body.vin == VIN

    def reason(data: bytes, **kw: object) -> str:
        args: dict[str, object] = {"vin": VIN, "keys": keys, "last_counter": None, "now": now()}
        args.update(kw)
        with pytest.raises(StatusReportError) as caught:
            verify_report(data, **args)  # type: ignore[arg-type]
        return caught.value.reason

    assert reason(good, vin="WVWZZZ1JZXW000002") == "report_vin_mismatch"
    assert reason(good, keys={}) == "ecu_key_unknown"
    stranger = ReportingCar.of(VIN)
    stranger.key = type(car.key).derived("someone else")
    assert reason(stranger.report()) == "report_signature_invalid"
    tampered = json.loads(good)
    tampered["signed"]["ecus"][0]["installed"]["version"] = "9.9.9"
    assert reason(json.dumps(tampered).encode()) == "report_signature_invalid"
    assert reason(good, last_counter=car.counter) == "report_duplicate"
    assert reason(good, last_counter=car.counter + 1) == "report_replayed"
    assert reason(b"{not json") == "report_malformed"
    assert reason(b" " * 70_000) == "report_too_large"
    future = car.report(at=now() + timedelta(days=1))
    assert reason(future) == "report_from_future"


async def test_reports_keep_the_software_record_and_refuse_replays(
    pool: asyncpg.Pool,
) -> None:
    await register(pool, VIN, ecus=[tcu(VIN, "2.0.0")])
    car = ReportingCar.of(VIN)
    ingest = StatusIngest(pool)
    before = await vehicle_software(pool, VIN)
    assert [(e.version, e.source) for e in before.ecus] == [("2.0.0", "factory")]
    unknown_key = await ingest.handle(VIN, car.report(), now())
    assert (unknown_key.accepted, unknown_key.reason) == (False, "ecu_key_unknown")
    await car.register_key(pool)
    first = car.report()
    assert (await ingest.handle(VIN, first, now())).accepted
    assert (await ingest.handle(VIN, first, now())).reason == "report_duplicate"
    car.ecus[0] = type(car.ecus[0])(
        car.ecus[0].serial,
        car.ecus[0].hardware_id,
        InstalledImage("2.1.0", 3, "tcu-fw-2.1.0", "ab" * 32, 1000),
    )
    assert (await ingest.handle(VIN, car.report(), now())).accepted
    assert (await ingest.handle(VIN, first, now())).reason == "report_replayed"
    software = await vehicle_software(pool, VIN)
    (ecu,) = software.ecus
    assert (ecu.version, ecu.target_path, ecu.release_counter, ecu.source) == (
        "2.1.0",
        "tcu-fw-2.1.0",
        3,
        "report",
    )
    assert software.software_id != before.software_id
    history = await software_history(pool, VIN, limit=10)
    assert [h.version for h in history] == ["2.1.0", "2.0.0"]
    stored = await pool.fetchrow(
        "SELECT counter, nonce FROM ota_version_reports WHERE vin = $1", VIN
    )
    assert (stored["counter"], stored["nonce"]) == (car.counter, car.nonces[-1])
    assert ingest.rejected == {"ecu_key_unknown": 1, "report_duplicate": 1, "report_replayed": 1}


async def test_progress_moves_the_update_and_out_of_order_progress_is_kept_apart(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    await register(pool, VIN)
    car = ReportingCar.of(VIN)
    await car.register_key(pool)
    campaign = await create_campaign(pool, spec(), now())
    async with pool.acquire() as conn:
        await apply(conn, campaign.id, VIN, S.OFFERED, now())
        await apply(conn, campaign.id, VIN, S.ACCEPTED, now())
    ingest = StatusIngest(pool)
    for status in ("downloading", "downloaded", "installing"):
        outcome = await ingest.handle(VIN, car.report(campaign.id, status), now())
        assert outcome.status == S(status)
    failed = await ingest.handle(
        VIN, car.report(campaign.id, "rolled_back", code="install_failed"), now()
    )
    assert failed.status is S.ROLLED_BACK
    late = await ingest.handle(VIN, car.report(campaign.id, "downloading"), now())
    assert (late.accepted, late.reason) == (True, "status_transition_invalid")
    async with pool.acquire() as conn:
        update = await load_update(conn, campaign.id, VIN)
    assert update is not None
    assert update.record.status is S.ROLLED_BACK and update.record.code == "install_failed"
    assert set(update.record.reached) == {
        S.ASSIGNED,
        S.OFFERED,
        S.ACCEPTED,
        S.DOWNLOADING,
        S.DOWNLOADED,
        S.INSTALLING,
        S.ROLLED_BACK,
    }
    unknown = await ingest.handle(VIN, car.report(__import__("uuid").uuid4(), "installed"), now())
    assert unknown.reason == "update_not_found"

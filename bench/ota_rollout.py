"""``fleetlink bench ota``: must-show 2 of issue 9. A campaign to N simulated cars in waves
completes with 2 % injected install failures, and the same campaign halts itself in its first
wave with 20 %; the status counts are printed.

Everything runs on 127.0.0.1 and is started and stopped here: a fresh embedded PostgreSQL
(one database per scenario), FleetLink's embedded broker, the API (image repository, director,
campaign routes) served by uvicorn, the rollout scheduler with its own broker identity
(``commander`` + status subscription), and N cars, each an OTA client with its own MQTT
connection and credentials that verifies both repositories over HTTP. The image is uploaded,
published and targeted through the API, as an operator would.

Injected failures are exact: ``round(rate * N)`` cars, drawn with the seed, fail their install
and fall back to their previous bank (``rolled_back``). The campaign id is derived from the
seed, so the waves hold the same cars at every run (placement hashes the id).

Waves: 10 % -> 30 % -> 60 % -> 100 %, each opening the next at 90 % installed and halting the
campaign above 8 % failed. A 1 % canary (5 of 500 cars) cannot tell 2 % failures from 20 %: it
holds no failing car 90 % of the time at 2 % and 33 % of the time at 20 %; 50 cars can
(halting at 5 failures: about 0.1 % false halts at 2 %, 2 % missed halts at 20 %).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import urllib3
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from api.vehicle_registry import Ecu, VehicleRegistry, VehicleSpec
from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.policy import ServiceIdentity, ServiceRole
from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions, free_port
from fleetlink.migrations import migrate
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from ota.ceremony import ensure_initialized
from ota.director import Director
from ota.director_ceremony import ensure_director_initialized
from ota.image_target import MAX_HARDWARE_IDS
from ota.rollout_scheduler import RolloutScheduler
from ota.rollout_settings import RolloutSettings
from ota.service import OtaService
from ota.settings import OtaSettings
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms
from protocol.endpoint import MqttEndpoint
from simulator.fleet import VehicleProfile, build_fleet
from simulator.ota_client.fleet import OtaFleet
from simulator.ota_client.installer import InstallProfile
from simulator.ota_client.vehicle import ecu_key

HOST = "127.0.0.1"
OTA_SERVICE = "svc-ota"
IMAGE_NAME = "tcu-fw"
IMAGE_VERSION = "9.0.0"
RELEASE_COUNTER = 10
IMAGE_BYTES = 64 * 1024
WAVES = tuple(
    {"share": s, "success_threshold": 0.9, "failure_threshold": 0.08} for s in (0.1, 0.3, 0.6, 1.0)
)
PARKED = {
    "Vehicle.Speed": 0.0,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 12.6,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 80.0,
}
IN_FLIGHT = ("offered", "accepted", "downloading", "downloaded", "installing")
POLL_S = 0.5
CAR_THREADS = 16
PROGRESS_S = 10.0


@dataclass(frozen=True)
class OtaBenchOptions:
    vehicles: int = 500
    seed: int = 1
    failure_rates: tuple[float, ...] = (0.02, 0.20)
    install_min_s: float = 0.2
    install_max_s: float = 1.0
    timeout_s: float = 900.0
    waves: tuple[dict[str, float], ...] = WAVES


# -- the stack --------------------------------------------------------------------------------


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the caller owns the signals
        yield


@dataclass
class OtaStack:
    pool: asyncpg.Pool
    api_url: str
    admin_token: str
    broker_port: int
    registry: VehicleRegistry
    scheduler: RolloutScheduler
    http: urllib3.PoolManager
    clock: Clock
    ota: OtaService
    director: Director

    def broker(self) -> MqttEndpoint:
        return MqttEndpoint(HOST, self.broker_port)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One API request as the administrator (unless ``headers`` say otherwise)."""
        sent = {"Authorization": f"Bearer {self.admin_token}"} if headers is None else headers
        if raw is not None:
            sent = {**sent, "Content-Type": "application/octet-stream"}
        elif body is not None:
            raw, sent = json.dumps(body).encode(), {**sent, "Content-Type": "application/json"}

        def request() -> tuple[int, Any]:
            response = self.http.request(
                method, self.api_url + path, body=raw, headers=sent, retries=False
            )
            data = response.data
            return response.status, json.loads(data) if data[:1] in (b"{", b"[") else data

        return await asyncio.to_thread(request)

    async def fetch(self, path: str, headers: dict[str, str] | None = None) -> bytes:
        """The exact bytes at ``path`` (a shipped root, as the car gets it)."""

        def request() -> bytes:
            response = self.http.request("GET", self.api_url + path, headers=headers or {})
            assert response.status == 200, response.data[:200]
            return bytes(response.data)

        return await asyncio.to_thread(request)


@asynccontextmanager
async def ota_stack(
    pool: asyncpg.Pool,
    workdir: Path,
    *,
    clock: Clock = SYSTEM_CLOCK,
    rollout: RolloutSettings | None = None,
    ota_settings: OtaSettings | None = None,
) -> AsyncIterator[OtaStack]:
    """Image repository and director initialized, broker, API on uvicorn and the scheduler.
    ``ota_settings``: thresholds and lifetimes (the data directory is ``workdir/ota``)."""
    now = utc_from_ms(clock.now_ms()).replace(microsecond=0)
    settings = (ota_settings or OtaSettings()).model_copy(update={"data_dir": workdir / "ota"})
    ota = OtaService(pool, settings, clock=clock)
    await ensure_initialized(ota.repository, settings, workdir / "image-root", now)
    director = Director.from_settings(pool, settings)
    await ensure_director_initialized(director, settings, workdir / "director-root", now)
    registry = VehicleRegistry(pool, clock=clock)
    secret = secrets.token_urlsafe(24)
    roles = frozenset({ServiceRole.COMMANDER, ServiceRole.INGEST})
    services = ServiceAccounts({OTA_SERVICE: (secret, ServiceIdentity(OTA_SERVICE, roles))})
    broker_port = free_port(HOST)
    broker = EmbeddedBroker(FirstMatch([services, registry]), host=HOST, port=broker_port)
    await broker.start()
    admin = secrets.token_urlsafe(32)
    app = create_app(
        ApiSettings(admin_token=admin),
        mqtt=MqttEndpoint(HOST, broker_port),
        database=pool,
        clock=clock,
        ota=ota,
    )
    port = free_port(HOST)
    server = _Uvicorn(uvicorn.Config(app, host=HOST, port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    scheduler = RolloutScheduler.over_mqtt(
        pool,
        MqttEndpoint(HOST, broker_port, username=OTA_SERVICE, password=secret),
        settings=rollout or RolloutSettings(tick_interval_s=0.5, resend_after_s=30),
        clock=clock,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    http = urllib3.PoolManager(maxsize=32)
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.02)
        assert scheduler.link is not None
        await asyncio.wait_for(scheduler.link.subscribed.wait(), 30)
        yield OtaStack(
            pool,
            f"http://{HOST}:{port}",
            admin,
            broker_port,
            registry,
            scheduler,
            http,
            clock,
            ota,
            director,
        )
    finally:
        stop.set()
        await running
        server.should_exit = True
        await serving
        await broker.stop()
        http.clear()


# -- the fleet and the image --------------------------------------------------------------------


async def provision(
    stack: OtaStack, profiles: Sequence[VehicleProfile], seed: int
) -> dict[str, str]:
    """Register the cars (with their ECUs), their report keys (through the API, as the
    production line would) and a parked, charged state. Returns VIN -> device secret."""
    passwords: dict[str, str] = {}
    semaphore = asyncio.Semaphore(8)

    async def one(profile: VehicleProfile) -> None:
        vin = str(profile.vin)
        ecus = tuple(Ecu(e.serial, e.hardware_id, e.software_version) for e in profile.ecus)
        spec = VehicleSpec(
            profile.vin, profile.brand, profile.model, profile.model_year, profile.powertrain, ecus
        )
        async with semaphore:
            passwords[vin] = (await stack.registry.register(spec)).password
            key = {"public_key": ecu_key(vin, seed).public_bytes.hex()}
            status, body = await stack.call("PUT", f"/v1/vehicles/{vin}/ota/ecu-key", key)
            assert status == 200, body

    await asyncio.gather(*(one(p) for p in profiles))
    batch = Batch()
    ts = stack.clock.now_ms()
    for profile in profiles:
        batch.add_readings(str(profile.vin), [Reading(s, ts, v, None) for s, v in PARKED.items()])
    await TelemetryStore(stack.pool).write(batch)
    return passwords


async def publish_image(stack: OtaStack, hardware_ids: Sequence[str], seed: int) -> str:
    data = random.Random(f"image:{seed}").randbytes(IMAGE_BYTES)
    query = "&".join(
        [f"name={IMAGE_NAME}", f"version={IMAGE_VERSION}", f"release_counter={RELEASE_COUNTER}"]
        + [f"hardware_id={h}" for h in sorted(hardware_ids)]
    )
    status, artifact = await stack.call("POST", f"/v1/ota/artifacts?{query}", raw=data)
    assert status == 201, artifact
    status, artifact = await stack.call("POST", f"/v1/ota/artifacts/{artifact['id']}/publish")
    assert status == 200, artifact
    return str(artifact["target_path"])


def tcu_hardware_ids(profiles: Sequence[VehicleProfile]) -> list[str]:
    return sorted({e.hardware_id for p in profiles for e in p.ecus if e.name == "tcu"})


def bench_fleet(vehicles: int, seed: int) -> list[VehicleProfile]:
    """``vehicles`` cars of the simulated fleet whose telematics units one image can serve: an
    image lists at most MAX_HARDWARE_IDS hardware ids (a model and hardware revision each), so
    the commonest are kept."""
    candidates = build_fleet(vehicles * 2, seed)
    counts = Counter(e.hardware_id for p in candidates for e in p.ecus if e.name == "tcu")
    served = {hw for hw, _ in counts.most_common(MAX_HARDWARE_IDS)}
    chosen = [
        p for p in candidates if any(e.hardware_id in served for e in p.ecus if e.name == "tcu")
    ]
    return chosen[:vehicles]


def failing_cars(profiles: Sequence[VehicleProfile], rate: float, seed: int) -> set[str]:
    vins = sorted(str(p.vin) for p in profiles)
    count = round(rate * len(vins))
    return set(random.Random(f"failing:{seed}:{rate}").sample(vins, count))


# -- one scenario -------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    failure_rate: float
    failing: int
    vehicles: int
    campaign: dict[str, Any]
    elapsed_s: float
    codes: dict[str, int]  # why updates failed, rolled back or were cancelled

    def row(self) -> dict[str, Any]:
        c = self.campaign
        return {
            "failure_rate": self.failure_rate,
            "injected_failures": self.failing,
            "vehicles": self.vehicles,
            "campaign_status": c["status"],
            "wave": c["current_wave"],
            "waves": len(c["waves"]),
            "status_reason": c["status_reason"],
            "by_status": {k: v for k, v in c["by_status"].items() if v},
            "wave_stats": c["wave_stats"],
            "result_codes": self.codes,
            "elapsed_s": round(self.elapsed_s, 1),
        }


def campaign_body(
    campaign_id: uuid.UUID, target: str, vins: Sequence[str], waves: Any
) -> dict[str, Any]:
    return {
        "id": str(campaign_id),
        "name": f"TCU firmware {IMAGE_VERSION}",
        "target": target,
        "targeting": {"vins": list(vins)},
        "waves": list(waves),
        "owner_info": {
            "purpose": "Telematics firmware: security fixes and faster reconnects",
            "duration_min": 15,
            "functions_unavailable": ["remote services", "emergency call (eCall backup active)"],
        },
    }


async def wait_settled(
    stack: OtaStack, campaign_id: uuid.UUID, timeout_s: float, say: Any = None
) -> dict[str, Any]:
    """Until the campaign completed or halted and no car is in the middle of an update."""
    deadline = time.monotonic() + timeout_s
    shown = time.monotonic()
    while True:
        status, campaign = await stack.call("GET", f"/v1/ota/campaigns/{campaign_id}")
        assert status == 200, campaign
        busy = sum(campaign["by_status"].get(s, 0) for s in IN_FLIGHT)
        waiting = campaign["by_status"].get("assigned", 0)
        done = campaign["status"] == "halted" or (campaign["status"] == "completed" and not waiting)
        if (done and not busy) or time.monotonic() > deadline:
            return dict(campaign)
        if say is not None and time.monotonic() - shown > PROGRESS_S:
            shown = time.monotonic()
            counts = {k: v for k, v in campaign["by_status"].items() if v}
            say(f"  {campaign['status']}, wave {campaign['current_wave'] + 1}: {counts}")
        await asyncio.sleep(POLL_S)


async def run_scenario(
    pool: asyncpg.Pool, workdir: Path, options: OtaBenchOptions, rate: float, say: Any
) -> ScenarioResult:
    profiles = bench_fleet(options.vehicles, options.seed)
    # The cars' blocking HTTP gets threads of its own: the API it waits for needs the
    # default executor's (argon2, key files, artifact reads) to answer.
    cars_executor = ThreadPoolExecutor(max_workers=CAR_THREADS, thread_name_prefix="car")
    async with ota_stack(pool, workdir) as stack:
        passwords = await provision(stack, profiles, options.seed)
        say(f"  {len(profiles)} cars registered; publishing the image")
        target = await publish_image(stack, tcu_hardware_ids(profiles), options.seed)
        # The roots every car is built with (Uptane 5.4.1).
        image_root = await stack.fetch("/ota/image/1.root.json")
        first = str(profiles[0].vin)
        director_root = await stack.fetch(
            f"/ota/director/{first}/1.root.json",
            urllib3.make_headers(basic_auth=f"{first}:{passwords[first]}"),
        )
        failing = failing_cars(profiles, rate, options.seed)
        install = (options.install_min_s, options.install_max_s)
        fleet = OtaFleet.build(
            profiles,
            passwords,
            seed=options.seed,
            api_url=stack.api_url,
            broker=stack.broker(),
            http=stack.http,
            clock=stack.clock,
            image_root=image_root,
            director_root=director_root,
            installs={
                vin: InstallProfile(1.0 if vin in failing else 0.0, *install) for vin in passwords
            },
            executor=cars_executor,
        )
        await fleet.start()
        say(f"  {len(fleet.cars)} cars connected; {len(failing)} will fail their install")
        campaign_id = uuid.uuid5(uuid.NAMESPACE_URL, f"fleetlink-bench-ota:{options.seed}")
        started = time.monotonic()
        body = campaign_body(campaign_id, target, sorted(passwords), options.waves)
        status, created = await stack.call("POST", "/v1/ota/campaigns", body)
        assert status == 201, created
        campaign = await wait_settled(stack, campaign_id, options.timeout_s, say)
        elapsed = time.monotonic() - started
        await fleet.stop()
        rows = await pool.fetch(
            "SELECT result_code, count(*) AS n FROM ota_campaign_vehicles"
            " WHERE campaign_id = $1 AND result_code IS NOT NULL GROUP BY result_code",
            campaign_id,
        )
    cars_executor.shutdown(wait=False, cancel_futures=True)
    codes = {r["result_code"]: r["n"] for r in rows}
    return ScenarioResult(rate, len(failing), len(profiles), campaign, elapsed, codes)


# -- the run ------------------------------------------------------------------------------------


async def run_ota_bench(options: OtaBenchOptions, out: TextIO) -> list[ScenarioResult]:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="fleetlink-bench-ota-"))
    server = EmbeddedPostgres(workdir / "pg", PostgresOptions(fsync=False))
    results = []
    try:
        await asyncio.to_thread(server.start)
        for index, rate in enumerate(options.failure_rates):
            total = len(options.failure_rates)
            say(f"scenario {index + 1} of {total}: {rate:.0%} injected install failures")
            dsn = await _fresh_database(server, f"ota_bench_{index}")
            pool = await asyncpg.create_pool(dsn, min_size=2, max_size=12)
            try:
                result = await run_scenario(pool, workdir / f"s{index}", options, rate, say)
            finally:
                await pool.close()
            say(f"  -> {result.campaign['status']} at wave {result.campaign['current_wave']}")
            results.append(result)
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


async def _fresh_database(server: EmbeddedPostgres, name: str) -> str:
    conn = await asyncpg.connect(server.dsn("postgres"))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(server.dsn(name))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return server.dsn(name)


STATUSES = ("installed", "rolled_back", "failed", "cancelled", *IN_FLIGHT, "assigned")


def format_table(results: Sequence[ScenarioResult]) -> str:
    head = (
        f"{'failures':>9} {'campaign':>10} {'wave':>5}"
        + "".join(f" {s:>11}" for s in STATUSES)
        + f" {'seconds':>8}"
    )
    lines = [head]
    for r in results:
        c = r.campaign
        counts = c["by_status"]
        lines.append(
            f"{r.failing:>4}/{r.vehicles:<4} {c['status']:>10} {c['current_wave'] + 1:>2}/"
            f"{len(c['waves']):<2}"
            + "".join(f" {counts.get(s, 0):>11}" for s in STATUSES)
            + f" {r.elapsed_s:>8.1f}"
        )
        lines.append(f"{'':>9} reason: {c['status_reason']}; result codes: {r.codes}")
    return "\n".join(lines)


def passed(results: Sequence[ScenarioResult]) -> bool:
    """Must-show 2: the low failure rate completes, the high one halts in the first wave."""
    by_rate = {r.failure_rate: r.campaign for r in results}
    low, high = by_rate.get(min(by_rate)), by_rate.get(max(by_rate))
    return (
        low is not None
        and high is not None
        and low["status"] == "completed"
        and high["status"] == "halted"
        and high["current_wave"] == 0
    )


def run_cli(*, vehicles: int, seed: int, as_json: bool, out: TextIO, progress: TextIO) -> int:
    """``fleetlink bench ota``: exit 0 when must-show 2 holds."""
    options = OtaBenchOptions(vehicles=vehicles, seed=seed)
    results = asyncio.run(run_ota_bench(options, progress))
    if as_json:
        print(
            json.dumps({"passed": passed(results), "scenarios": [r.row() for r in results]}),
            file=out,
        )
    else:
        print(format_table(results), file=out)
        print("must-show 2:", "passed" if passed(results) else "NOT passed", file=out)
    return 0 if passed(results) else 1

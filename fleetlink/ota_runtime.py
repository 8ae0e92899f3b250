"""OTA in the embedded stack (``fleetlink up``): the Uptane director beside the image
repository, the rollout scheduler on the broker, and the simulated cars' side (their report
keys registered, an OTA client in each car's command handling).

The director's root key, like the image repository's, is created on first start in a
directory of its own that the server never reads again; production keeps both offline
(docs/ota.md, "Key ceremonies").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import asyncpg
import urllib3

from ota.director import Director
from ota.director_ceremony import ensure_director_initialized
from ota.rollout_scheduler import RolloutScheduler
from ota.rollout_settings import RolloutSettings
from ota.service import OtaService
from ota.status_keys import register_key
from protocol.clock import Clock
from protocol.endpoint import MqttEndpoint
from simulator.ota_client.onboard_setup import FleetOta
from simulator.ota_client.vehicle import ecu_key
from simulator.runner import FleetMember

OTA_SERVICE = "svc-ota"  # the scheduler's broker account: commander, and reader of ota/status
DIRECTOR_OFFLINE_ROOT_DIR = "ota-offline-director-root"
#: Threads for the simulated cars' blocking HTTP (metadata and image downloads). Their own, so
#: waiting cars cannot take the threads the API they wait for needs to answer them.
CAR_HTTP_THREADS = 4


async def start_director(
    pool: asyncpg.Pool, ota: OtaService, data_dir: Path, now: datetime
) -> Director:
    director = Director.from_settings(pool, ota.settings)
    await ensure_director_initialized(
        director, ota.settings, data_dir / DIRECTOR_OFFLINE_ROOT_DIR, now
    )
    return director


def rollout_scheduler(pool: asyncpg.Pool, endpoint: MqttEndpoint, clock: Clock) -> RolloutScheduler:
    return RolloutScheduler.over_mqtt(pool, endpoint, settings=RolloutSettings(), clock=clock)


async def register_ecu_keys(
    pool: asyncpg.Pool, members: Sequence[FleetMember], seed: int, now: datetime
) -> None:
    """Each simulated car's version-report key, as the production line registers it
    (idempotent: a restart registers the same keys again)."""
    async with pool.acquire() as conn, conn.transaction():
        for member in members:
            vin = str(member.profile.vin)
            await register_key(conn, vin, ecu_key(vin, seed).public_bytes, now)


async def root_v1(director: Director, ota: OtaService) -> tuple[bytes, bytes]:
    """The image repository's and the director's first roots: what a car is built with. A
    car updates them through the chain of later roots."""
    image = await ota.repository.metadata("root", 1)
    director_root = await director.root(1)
    if image is None or director_root is None:
        raise RuntimeError("OTA repositories are not initialized")
    return image, director_root.body


@contextlib.contextmanager
def fleet_ota(
    members: Sequence[FleetMember], *, seed: int, api_url: str, roots: tuple[bytes, bytes]
) -> Iterator[FleetOta]:
    """OTA clients for the simulated cars, with an HTTP pool and threads of their own, which
    are closed on the way out."""
    executor = ThreadPoolExecutor(max_workers=CAR_HTTP_THREADS, thread_name_prefix="car-ota")
    http = urllib3.PoolManager(maxsize=CAR_HTTP_THREADS)
    try:
        yield FleetOta(
            members,
            seed=seed,
            api_url=api_url,
            image_root=roots[0],
            director_root=roots[1],
            http=http,
            executor=executor,
        )
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        http.clear()

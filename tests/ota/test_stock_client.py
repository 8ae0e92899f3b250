"""Must-show of issue 9: a stock ``tuf.ngclient.Updater`` (its own urllib3 fetcher, no FleetLink
code) pointed at ``/ota/image/`` of the app served by uvicorn on a loopback port refreshes and
downloads a published target; again after key rotations, and after the timestamp was
refreshed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from tuf.ngclient.updater import Updater

from api.app import create_app
from api.settings import ApiSettings
from fleetlink.embedded_postgres import free_port
from ota.ceremony import rotate
from ota.policy import ROOT, TIMESTAMP, KeyPolicy
from protocol.endpoint import MqttEndpoint
from tests.ota.conftest import OtaFixture
from tests.ota.memory_repository import wall_now
from tests.ota.test_http import ADMIN, ADMIN_TOKEN, CHEAP_HASHING, FACTS, OCTETS

pytestmark = pytest.mark.integration

CHUNK = 64 * 1024


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (pytest owns SIGINT)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving(pool: asyncpg.Pool, ota: OtaFixture) -> AsyncIterator[str]:
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN, **CHEAP_HASHING),
        mqtt=MqttEndpoint("127.0.0.1", free_port()),
        database=pool,
        ota=ota.service,
    )
    port = free_port()
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def publish(base: str, content: bytes, version: str, counter: int) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), CHUNK):
            yield content[start : start + CHUNK]

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        created = await http.post(
            "/v1/ota/artifacts",
            params={**FACTS, "version": version, "release_counter": counter},
            content=chunks(),  # chunked transfer: streamed through uvicorn to disk
            headers={**ADMIN, **OCTETS},
        )
        assert created.status_code == 201, created.text
        published = await http.post(
            f"/v1/ota/artifacts/{created.json()['id']}/publish", headers=ADMIN
        )
        assert published.status_code == 200, published.text
        target_path: str = published.json()["target_path"]
        return target_path


def client(base: str, workdir: Path, bootstrap: bytes | None) -> Updater:
    (workdir / "metadata").mkdir(parents=True, exist_ok=True)
    (workdir / "downloads").mkdir(exist_ok=True)
    return Updater(
        metadata_dir=str(workdir / "metadata"),
        metadata_base_url=f"{base}/ota/image/",
        target_dir=str(workdir / "downloads"),
        target_base_url=f"{base}/ota/image/targets/",
        bootstrap=bootstrap,
    )


def refresh_and_download(base: str, workdir: Path, target: str, bootstrap: bytes | None) -> bytes:
    """What a car does, all of it python-tuf: refresh top-level metadata, look the target up,
    download and verify it (length and sha256 against the signed targets metadata)."""
    updater = client(base, workdir, bootstrap)
    updater.refresh()
    info = updater.get_targetinfo(target)
    assert info is not None, f"{target} is not in the signed targets metadata"
    return Path(updater.download_target(info)).read_bytes()


def cached_version(workdir: Path, role: str) -> int:
    signed = json.loads((workdir / "metadata" / f"{role}.json").read_bytes())["signed"]
    version: int = signed["version"]
    return version


async def test_stock_updater_refreshes_and_downloads(
    pool: asyncpg.Pool, ota: OtaFixture, tmp_path: Path
) -> None:
    car = tmp_path / "car"
    first_image = os.urandom(3 * 1024 * 1024 + 17)
    async with serving(pool, ota) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            shipped_root = (await http.get("/ota/image/1.root.json")).content  # factory-installed
        first = await publish(base, first_image, "2.1.0", 7)

        downloaded = await asyncio.to_thread(refresh_and_download, base, car, first, shipped_root)
        assert downloaded == first_image

        # Key rotations: timestamp (online key) and root (offline keys). The car still trusts
        # root v1 and walks v1 -> v2 -> v3, each verified by its predecessor's keys.
        for role in (TIMESTAMP, ROOT):
            await rotate(
                ota.service.repository,
                ota.online,
                ota.offline,
                role=role,
                policy=KeyPolicy.from_settings(ota.settings),
                now=wall_now(),
            )
        second_image = os.urandom(100_000)
        second = await publish(base, second_image, "2.2.0", 8)
        downloaded = await asyncio.to_thread(refresh_and_download, base, car, second, None)
        assert downloaded == second_image
        assert cached_version(car, "root") == 3

        # The refresh loop re-signs the timestamp (later than now, as time passes); the car
        # accepts the new version, signed with the rotated key.
        before = cached_version(car, "timestamp")
        refreshed = await ota.service.refresh_if_due(wall_now() + timedelta(hours=13))
        assert refreshed == (TIMESTAMP,)
        downloaded = await asyncio.to_thread(refresh_and_download, base, car, first, None)
        assert downloaded == first_image
        assert cached_version(car, "timestamp") == before + 1

"""Schemathesis against the application's own OpenAPI schema: no request, valid or not, may get
a 5xx (the ``not_a_server_error`` check).

The API runs under uvicorn on a free loopback port, as in production: its own pool on this
test's database, OTA with an initialized image repository and director, a fleet CA (without
them, their routes answer 503 by design). Every operation gets

- schemathesis' coverage phase (each parameter and body field at and past its bounds, wrong
  types, missing required parts, unexpected methods), with the token the route is for;
- random schema-conforming (positive) and schema-violating (negative) cases, with the admin
  token and with a customer's token.

A few objects exist (the customer's car with an ECU, the seeded Munich centres, a booking) so
that cases reach past "not found". The SSE stream is asked with ``follow=false`` (a followed
stream never ends), and the customer's erasure runs last (it ends that customer's token).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import requests
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.openapi import from_dict
from schemathesis.schemas import APIOperation

from api.app import create_app
from api.service.seed import seed_service_network
from api.settings import ApiSettings
from api.vehicle_registry import Ecu, VehicleRegistry, VehicleSpec
from broker.fleet_ca import FleetCA
from fleetlink.embedded_postgres import free_port
from ota.ceremony import initialize, offline_directory, online_directory
from ota.director import Director
from ota.director_ceremony import initialize_director, online_director_directory
from ota.policy import KeyPolicy, RoleKeys
from ota.service import OtaService
from ota.settings import OtaSettings
from protocol.catalogue import Powertrain
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin
from tests.api.customer_platform import ADMIN, ADMIN_TOKEN, CHEAP_HASHING, PASSWORD

pytestmark = pytest.mark.integration

#: Cases per operation, generation mode and token: up to 4 x this many requests per operation,
#: about a minute in all. A deeper, randomised hunt: FLEETLINK_SCHEMATHESIS_EXAMPLES=200.
DEEP = os.environ.get("FLEETLINK_SCHEMATHESIS_EXAMPLES")
MAX_EXAMPLES = int(DEEP) if DEEP else 5
VIN = "WVWZZZ1JZXW000001"
STREAM = "/v1/me/notifications/stream"
LAST = ("DELETE", "/v1/me")


@dataclass
class Api:
    url: str
    schema: dict[str, Any]
    customer: dict[str, str]


@dataclass
class Tally:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    phases: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    without_negative: set[str] = field(default_factory=set)
    # Operations that answered 2xx at least once: the run got past validation and lookup.
    answered: set[str] = field(default_factory=set)


@pytest.fixture
async def prepared(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, OtaSettings]]:
    """This test's database with the OTA repository and director initialized, the service
    network seeded and a registered car with an ECU."""
    ota = OtaSettings(data_dir=tmp_path / "ota")
    single = RoleKeys(1, 1)
    now = datetime.now(UTC).replace(microsecond=0)
    pool: asyncpg.Pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await initialize(
            OtaService(pool, ota).repository,
            online_directory(ota.keys_dir),
            offline_directory(tmp_path / "image-root"),
            KeyPolicy.from_settings(ota, root=single),
            now,
        )
        director = Director.from_settings(pool, ota)
        await initialize_director(
            director,
            online_director_directory(director.keys.path),
            offline_directory(tmp_path / "director-root"),
            KeyPolicy(single, single, single, single),
            now,
        )
        ecu = Ecu("TCU-000001", "VW-ID3-TCU-H1", "1.0.0")
        await VehicleRegistry(pool).register(
            VehicleSpec(Vin(VIN), "Volkswagen", "ID.3", 2024, Powertrain.BEV, (ecu,))
        )
        async with pool.acquire() as conn:
            await seed_service_network(conn, now=now)
    finally:
        await pool.close()
    yield database_url, ota


@pytest.fixture
def api(prepared: tuple[str, OtaSettings]) -> Iterator[Api]:
    """The app under uvicorn in a thread of its own (its own event loop and pool)."""
    database_url, ota = prepared

    async def open_pool() -> asyncpg.Pool:
        pool: asyncpg.Pool = await asyncpg.create_pool(database_url, min_size=2, max_size=8)
        return pool

    # The health check only dials the broker: a listening socket answers for it (no MQTT
    # traffic happens in this test).
    broker = socket.create_server(("127.0.0.1", 0))
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN, **CHEAP_HASHING),
        mqtt=MqttEndpoint("127.0.0.1", broker.getsockname()[1]),
        database=open_pool,
        fleet_ca=FleetCA.create(now=datetime.now(UTC)),
        ota=lambda pool: OtaService(pool, ota),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="schemathesis-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            yield Api(url, http.get("/openapi.json").json(), _customer(http))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        broker.close()
        assert not thread.is_alive(), "the API did not stop"


def _customer(http: httpx.Client) -> dict[str, str]:
    """A customer who owns the car, with location consent and a booking: their token."""
    body = {"email": "st@example.com", "password": PASSWORD}
    created = http.post("/v1/customers", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    linked = http.put(
        f"/v1/vehicles/{VIN}/owner", json={"customer_id": created.json()["id"]}, headers=ADMIN
    )
    assert linked.status_code == 200, linked.text
    token = http.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "st@example.com", "password": PASSWORD},
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    consent = {"source": "app", "purposes": {"location": True}}
    assert http.put("/v1/me/consents", json=consent, headers=headers).status_code == 200
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    slots = http.get(
        "/v1/service/slots",
        params={"lat": 48.137, "lon": 11.576, "from": tomorrow},
        headers=headers,
    )
    assert slots.status_code == 200, slots.text
    workshop = next(o for o in slots.json()["data"] if o["kind"] == "workshop")
    free = next(s for s in workshop["slots"] if s["free"])
    booking = {"vin": VIN, "slot_start": free["start"], "centre_id": workshop["centre_id"]}
    booked = http.post("/v1/me/bookings", json=booking, headers=headers)
    assert booked.status_code == 201, booked.text
    return headers


def _operations(schema: dict[str, Any]) -> list[APIOperation]:
    loaded = from_dict(schema)
    operations = [result.ok() for result in loaded.get_all_operations()]
    # The customer's erasure last: it ends their token.
    return sorted(operations, key=lambda o: (o.method.upper(), o.path) == LAST)


def _exercise(
    api: Api, operation: APIOperation, mode: GenerationMode, auth: dict[str, str], tally: Tally
) -> None:
    query = {"follow": "false"} if operation.path == STREAM else None
    strategy = operation.as_strategy(generation_mode=mode, query=query)
    session = requests.Session()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DEEP is None,  # the same cases every run, unless hunting
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        _check(api, case, auth, tally, mode.value, session)

    try:
        run()
    except Unsatisfiable:
        # Nothing in the operation can be made invalid (no parameters, no body): negative
        # mode has no case to offer.
        assert mode is GenerationMode.NEGATIVE, operation.label
        tally.without_negative.add(operation.label)


def _cover(api: Api, operation: APIOperation, auth: dict[str, str], tally: Tally) -> None:
    """Schemathesis' coverage phase: each parameter and body field at and past its bounds
    (lengths, ranges, patterns, types, missing required ones), deterministically."""
    session = requests.Session()
    schema = operation.schema
    cases = schema.iter_coverage_cases(
        operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
    )
    for case in cases:
        if operation.path == STREAM:
            case.query = {**(case.query or {}), "follow": "false"}
        _check(api, case, auth, tally, "coverage", session)


def _check(
    api: Api,
    case: Any,
    auth: dict[str, str],
    tally: Tally,
    phase: str,
    session: requests.Session,
) -> None:
    response = case.call(base_url=api.url, session=session, headers=auth, timeout=15)
    tally.cases += 1
    tally.phases[phase] = tally.phases.get(phase, 0) + 1
    tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
    if response.status_code < 300:
        tally.answered.add(case.operation.label)
    try:
        case.validate_response(response, checks=[not_a_server_error])
    except (Failure, FailureGroup) as exc:
        tally.failures.append(
            f"{case.operation.label} ({phase}): {response.status_code} {response.text[:300]}\n"
            f"  {case.as_curl_command()}\n  {exc}"
        )


def test_no_request_gets_a_server_error(api: Api) -> None:
    tally = Tally()
    started = time.monotonic()
    for operation in _operations(api.schema):
        tally.operations.add(f"{operation.method.upper()} {operation.path}")
        # Boundaries with the token the route is for; random cases with both.
        _cover(
            api, operation, api.customer if operation.path.startswith("/v1/me") else ADMIN, tally
        )
        for auth in (ADMIN, api.customer):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _exercise(api, operation, mode, auth, tally)
    elapsed = time.monotonic() - started
    print(
        f"schemathesis: {len(tally.operations)} operations, {tally.cases} cases in "
        f"{elapsed:.0f} s; {tally.phases}; statuses {dict(sorted(tally.statuses.items()))}"
    )
    assert not tally.failures, "\n".join(tally.failures)
    assert len(tally.operations) > 80
    assert len(tally.answered) > len(tally.operations) // 2, sorted(tally.answered)

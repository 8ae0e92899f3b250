"""A car that reconnects before the broker noticed its old connection died (normal on mobile
networks) takes its session over: it must keep its rights, and stay reachable for revocation."""

from __future__ import annotations

import asyncio
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.policy import ServiceIdentity, ServiceRole
from fleetlink.embedded_postgres import free_port

VIN = "WVWZZZ1JZXW000001"


def client(port: int, client_id: str, username: str, password: str, *, clean: bool) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    c.username_pw_set(username, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


async def until(condition: object, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("clean", [False, True])
async def test_take_over_keeps_the_identity_and_revocation_reaches_the_new_connection(
    test_vehicles,
    clean: bool,
) -> None:
    services = ServiceAccounts(
        {"svc": ("pw", ServiceIdentity("svc", frozenset({ServiceRole.INGEST})))}
    )
    port = free_port()
    broker = EmbeddedBroker(FirstMatch([services, test_vehicles]), port=port)
    await broker.start()
    received: list[bytes] = []
    listener = client(port, "svc", "svc", "pw", clean=True)
    listener.on_message = lambda _c, _u, m: received.append(m.payload)
    old = new = None
    try:
        await until(listener.is_connected)
        listener.subscribe("v1/vehicles/+/telemetry", qos=1)
        await asyncio.sleep(0.2)
        old = client(port, VIN, VIN, test_vehicles.passwords[VIN], clean=clean)
        await until(old.is_connected)
        old.loop_stop()  # the old link goes silent without a DISCONNECT (a tunnel)
        new = client(port, VIN, VIN, test_vehicles.passwords[VIN], clean=clean)
        await until(new.is_connected)
        await asyncio.sleep(0.3)  # the old connection's disconnect event has fired by now
        new.publish(f"v1/vehicles/{VIN}/telemetry", b"after-take-over", qos=1)
        await until(lambda: b"after-take-over" in received)
        assert broker.denials == {}
        assert VIN in broker.connected_clients()

        gone = threading.Event()
        new.on_disconnect = lambda *_: gone.set()
        assert await broker.disconnect_vehicle(VIN)
        assert await asyncio.to_thread(gone.wait, 5)
    finally:
        for c in (listener, old, new):
            if c is not None:
                c.loop_stop()
                c.disconnect()
        await broker.stop()

"""The OTA client in the car's command handling (simulator.onboard): ``ota.offer`` commands
reach :meth:`OtaClient.handle_offer` through the registry, an offer waiting for the owner is
shown and not installed, a redelivered command runs once, a malformed one is rejected with a
reason the car reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3

from protocol.messages import CommandMessage, CommandType, encode
from protocol.vin import Vin
from simulator.commands import EventValue
from simulator.onboard import Onboard, OnboardOptions
from simulator.ota_client.client import OtaClient, OtaTransport
from simulator.ota_client.onboard_setup import ota_setup
from simulator.ota_client.report import EcuKey
from simulator.ota_client.trust import RepositoryTrust
from simulator.ota_client.verify import EcuState, InstalledImage

VIN = "WVWZZZ1JZXW000001"


@dataclass
class Clock:
    ms: int = 1_763_892_000_000

    def now_ms(self) -> int:
        return self.ms


@dataclass
class Events:
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def offer_event(
        self,
        ts_ms: int,
        event_type: str,
        *,
        code: str | None = None,
        active: bool | None = None,
        fields: Mapping[str, EventValue] | None = None,
    ) -> None:
        self.seen.append((event_type, dict(fields or {})))


@dataclass
class Reports:
    sent: list[bytes] = field(default_factory=list)

    async def publish(self, payload: bytes) -> None:
        self.sent.append(payload)


def make_client(onboard: Onboard) -> OtaClient:
    # Nothing here is fetched: the offers below are not approved (or are refused first).
    transport = OtaTransport.http(urllib3.PoolManager(), "http://127.0.0.1:9", VIN, "secret")
    return OtaClient(
        vin=str(onboard.vin),
        ecus=[EcuState("TCU-1", "HW", InstalledImage("2.0.0", 0))],
        key=EcuKey.derived("onboard-test"),
        transport=transport,
        publisher=Reports(),
        clock=onboard.clock,
        image_trust=RepositoryTrust.anchored("image", b"{}"),
        director_trust=RepositoryTrust.anchored("director", b"{}"),
    )


def offer(command_id: str, payload: dict[str, Any]) -> bytes:
    return encode(CommandMessage(id=command_id, type=CommandType.OTA_OFFER, ts=1, payload=payload))


async def test_an_offer_reaches_the_client_once_and_a_bad_one_is_reported() -> None:
    clients: dict[str, OtaClient] = {}
    events = Events()
    onboard = Onboard(
        Vin(VIN), Clock(), events, OnboardOptions(setup=ota_setup(make_client, clients))
    )
    client = clients[VIN]
    waiting = {"campaign_id": "c-1", "approved": False, "purpose": "Fixes", "duration_min": 5}
    await onboard.dispatcher(offer("ota-1", waiting))
    await onboard.dispatcher(offer("ota-1", waiting))  # redelivered
    assert client.offers == {"c-1": waiting}
    assert client.outcomes == [] and onboard.dispatcher.duplicates == 1
    await onboard.dispatcher(offer("ota-2", {"approved": True}))
    assert onboard.dispatcher.rejected == {"invalid_offer": 1}
    assert [(t, f.get("id"), f.get("reason")) for t, f in events.seen] == [
        ("command_ack", "ota-1", None),
        ("command_rejected", "ota-2", "invalid_offer"),
    ]

"""The car's command dispatcher and its handlers, against an in-memory event sink: dedupe of
redelivered commands, bad commands that never stop the car, notify and entitlements."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocol.entitlements import (
    PAYLOAD_TYPE,
    EntitlementDocument,
    EntitlementFeature,
    EntitlementKind,
    command_id,
    encode_body,
    pae,
    public_key_from_hex,
)
from protocol.messages import CommandMessage, CommandType, encode
from protocol.vin import Vin
from simulator.commands import CommandDispatcher, CommandRegistry, CommandRejectedError
from simulator.onboard import Onboard, OnboardOptions

VIN = Vin("WVWZZZ1JZXW000001")
T0 = 1763892000000
HOUR_MS = 3_600_000
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYID = "fleet-entitlements-1"


@dataclass
class Clock:
    ms: int = T0

    def now_ms(self) -> int:
        return self.ms


@dataclass
class Events:
    """What the car would publish on its events topic."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    def offer_event(
        self,
        ts_ms: int,
        event_type: str,
        *,
        code: str | None = None,
        active: bool | None = None,
        fields: Mapping[str, str | int | bool] | None = None,
    ) -> None:
        self.sent.append({"ts": ts_ms, "type": event_type, **(fields or {})})

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.sent if e["type"] == event_type]


def _command(command_type: str, command_id: str, payload: dict[str, Any]) -> bytes:
    return encode(
        CommandMessage(id=command_id, type=CommandType(command_type), ts=T0, payload=payload)
    )


def _notify(delivery_id: int, title: str = "Brake pads wearing out") -> bytes:
    payload = {
        "title": title,
        "body": "Book a visit.",
        "category": "informational",
        "notification_id": 800 + delivery_id,
    }
    return _command("notify", f"notify-{delivery_id}", payload)


def _pinned() -> OnboardOptions:
    public = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return OnboardOptions(entitlement_keys={KEYID: public_key_from_hex(public.hex())})


def _car(clock: Clock | None = None) -> tuple[Onboard, Events, Clock]:
    clock = clock or Clock()
    events = Events()
    return Onboard(VIN, clock, events, _pinned()), events, clock


def _document(
    version: int,
    features: dict[str, int | None],
    *,
    vin: str = VIN,
    issued_at: int = T0,
    key: Ed25519PrivateKey = KEY,
    keyid: str = KEYID,
) -> dict[str, Any]:
    document = EntitlementDocument(
        vin=vin,
        version=version,
        issued_at=issued_at,
        expires_at=issued_at + 24 * HOUR_MS,
        features=[
            EntitlementFeature(
                name=name,
                kind=EntitlementKind.TRIAL if until else EntitlementKind.PURCHASE,
                valid_from=issued_at,
                valid_until=until,
            )
            for name, until in features.items()
        ],
    )
    body = encode_body(document)
    signature = key.sign(pae(PAYLOAD_TYPE, body))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode(),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}],
    }


def _entitlements(document: dict[str, Any], version: int = 1, vin: str = VIN) -> bytes:
    return _command("entitlements", command_id(vin, version), {"document": document})


# -- dispatcher ----------------------------------------------------------------------------------


async def test_a_notify_is_recorded_and_acknowledged_once_despite_redelivery() -> None:
    car, events, _ = _car()
    await car.dispatcher(_notify(17))
    await car.dispatcher(_notify(17))  # QoS 1 redelivery: same id
    assert [n.notification_id for n in car.inbox.items()] == [817]
    assert car.inbox.items()[0].title == "Brake pads wearing out"
    assert events.sent == [{"ts": T0, "type": "command_ack", "id": "notify-17"}]
    assert (car.dispatcher.executed, car.dispatcher.duplicates) == (1, 1)


async def test_distinct_commands_are_each_executed() -> None:
    car, events, _ = _car()
    for delivery in (1, 2, 3):
        await car.dispatcher(_notify(delivery))
    assert [e["id"] for e in events.of_type("command_ack")] == ["notify-1", "notify-2", "notify-3"]


@pytest.mark.parametrize(
    ("payload", "reason", "reported_id"),
    [
        (b"\xff\xfe not utf-8", "malformed_json", None),
        (b"{not json", "malformed_json", None),
        (b"[1, 2]", "invalid_command", None),
        (b'{"id": "c-1", "type": "notify"}', "invalid_command", "c-1"),
        (b'{"id": "c-2", "type": "teleport", "ts": 1, "payload": {}}', "unsupported_type", "c-2"),
        (b'{"id": "c-3", "type": "diagnose", "ts": 1, "payload": {}}', "unsupported_type", "c-3"),
        (
            b'{"id": "c-4", "type": "notify", "ts": 1, "payload": {"title": 5}}',
            "invalid_payload",
            "c-4",
        ),
        (
            b'{"id": "c-5", "type": "notify", "ts": 1, "payload": {}, "x": "'
            + b"a" * 140_000
            + b'"}',
            "too_large",
            None,
        ),
    ],
    ids=[
        "not utf-8",
        "not json",
        "not an object",
        "no ts",
        "unknown type",
        "no handler",
        "bad payload",
        "too large",
    ],
)
async def test_a_bad_command_is_counted_reported_and_the_car_carries_on(
    payload: bytes, reason: str, reported_id: str | None
) -> None:
    car, events, _ = _car()
    await car.dispatcher(payload)
    assert car.dispatcher.rejected == {reason: 1}
    report = events.of_type("command_rejected")
    assert len(report) == 1 and report[0]["reason"] == reason
    assert report[0].get("id") == reported_id
    await car.dispatcher(_notify(5))  # still working
    assert events.of_type("command_ack") == [{"ts": T0, "type": "command_ack", "id": "notify-5"}]


async def test_fields_the_car_does_not_know_are_ignored() -> None:
    car, events, _ = _car()
    raw = json.loads(_notify(9))
    raw["priority"] = "high"  # a newer cloud
    raw["payload"]["icon"] = "brake"
    await car.dispatcher(json.dumps(raw).encode())
    assert events.of_type("command_ack") == [{"ts": T0, "type": "command_ack", "id": "notify-9"}]


async def test_a_rejected_command_is_not_remembered_so_a_genuine_one_with_its_id_runs() -> None:
    car, events, _ = _car()
    bad = _command("notify", "notify-3", {"title": ""})
    await car.dispatcher(bad)
    await car.dispatcher(_notify(3))
    assert [n.command_id for n in car.inbox.items()] == ["notify-3"]
    assert len(events.of_type("command_ack")) == 1


async def test_a_handler_that_raises_is_contained() -> None:
    registry = CommandRegistry()
    calls: list[str] = []

    async def broken(command: CommandMessage) -> None:
        calls.append(command.id)
        raise RuntimeError("bug")

    registry.register("ota.offer", broken)
    events = Events()
    dispatcher = CommandDispatcher(registry, events, Clock())
    payload = _command("ota.offer", "offer-1", {})
    await dispatcher(payload)
    await dispatcher(payload)  # not remembered: tried again
    assert calls == ["offer-1", "offer-1"]
    assert dispatcher.rejected == {"handler_error": 2}
    assert registry.types() == {"ota.offer"}


async def test_a_registered_handler_rejects_with_its_own_event_type() -> None:
    registry = CommandRegistry()

    async def refuse(command: CommandMessage) -> None:
        raise CommandRejectedError("no_space", event_type="ota_rejected", fields={"free_mb": 3})

    registry.register(CommandType.OTA_OFFER, refuse)
    events = Events()
    await CommandDispatcher(registry, events, Clock())(_command("ota.offer", "offer-2", {}))
    assert events.sent == [
        {"ts": T0, "type": "ota_rejected", "free_mb": 3, "reason": "no_space", "id": "offer-2"}
    ]


async def test_the_dedupe_memory_is_bounded() -> None:
    events = Events()
    car, _, clock = _car()
    dispatcher = CommandDispatcher(car.registry, events, clock, remembered_ids=2)
    for delivery in (1, 2, 3):
        await dispatcher(_notify(delivery))
    await dispatcher(_notify(1))  # forgotten: the oldest of three with room for two
    await dispatcher(_notify(3))  # remembered
    assert dispatcher.executed == 4 and dispatcher.duplicates == 1


# -- entitlements ---------------------------------------------------------------------------------


async def test_a_valid_document_enables_its_features_and_is_acknowledged() -> None:
    car, events, _ = _car()
    await car.dispatcher(_entitlements(_document(1, {"heated_seats": None})))
    assert car.features() == {"heated_seats"}
    assert events.of_type("command_ack") == [
        {"ts": T0, "type": "command_ack", "id": command_id(VIN, 1)}
    ]


async def test_a_trial_ends_by_the_cars_clock_without_any_message() -> None:
    car, _, clock = _car()
    trial_end = T0 + HOUR_MS
    await car.dispatcher(_entitlements(_document(1, {"performance_boost": trial_end})))
    assert car.features() == {"performance_boost"}
    clock.ms = trial_end
    assert car.features() == frozenset()


async def test_a_newer_version_supersedes_and_drops_what_it_leaves_out() -> None:
    car, _, clock = _car()
    await car.dispatcher(
        _entitlements(_document(1, {"heated_seats": None, "adaptive_cruise": None}))
    )
    clock.ms += 1000
    await car.dispatcher(
        _entitlements(_document(2, {"adaptive_cruise": None}, issued_at=clock.ms), 2)
    )
    assert car.features() == {"adaptive_cruise"}
    assert car.entitlements.version == 2


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            _document(
                5, {"performance_boost": None}, key=Ed25519PrivateKey.from_private_bytes(bytes(32))
            ),
            "bad_signature",
        ),
        (_document(5, {"performance_boost": None}, keyid="someone-else"), "unknown_key"),
        (_document(5, {"performance_boost": None}, vin="WVWZZZ1JZXW000002"), "foreign_vin"),
        (_document(5, {"performance_boost": None}, issued_at=T0 - 48 * HOUR_MS), "expired"),
        (_document(1, {"performance_boost": None}), "stale_version"),
        (_document(2, {"performance_boost": None}), "stale_version"),
        ({"payloadType": PAYLOAD_TYPE}, "malformed"),
    ],
    ids=[
        "forged",
        "unknown key",
        "foreign vin",
        "expired",
        "older version",
        "same version",
        "malformed",
    ],
)
async def test_an_attack_is_rejected_reported_and_the_next_valid_document_is_taken(
    document: dict[str, Any], reason: str
) -> None:
    car, events, _ = _car()
    await car.dispatcher(_entitlements(_document(2, {"heated_seats": None}), 2))
    await car.dispatcher(_entitlements(document, 5))
    assert car.features() == {"heated_seats"}  # unchanged
    assert events.of_type("entitlement_rejected") == [
        {
            "ts": T0,
            "type": "entitlement_rejected",
            "reason": reason,
            "id": command_id(VIN, 5),
            "current_version": 2,
        }
    ]
    assert car.dispatcher.rejected == {reason: 1}
    await car.dispatcher(_entitlements(_document(3, {"adaptive_cruise": None}), 3))
    assert car.features() == {"adaptive_cruise"}


async def test_the_same_document_again_is_a_quiet_no_op() -> None:
    car, events, _ = _car()
    document = _document(4, {"heated_seats": None})
    await car.dispatcher(_entitlements(document, 4))
    # A re-push after a reconnect, under another id (e.g. the car restarted its dispatcher).
    await car.dispatcher(_command("entitlements", "entitlements-again", {"document": document}))
    assert car.features() == {"heated_seats"}
    assert events.of_type("entitlement_rejected") == []
    assert len(events.of_type("command_ack")) == 2


async def test_without_pinned_keys_every_document_is_refused() -> None:
    events = Events()
    car = Onboard(VIN, Clock(), events, OnboardOptions())
    await car.dispatcher(_entitlements(_document(1, {"heated_seats": None})))
    assert car.features() == frozenset()
    assert events.of_type("entitlement_rejected")[0]["reason"] == "unknown_key"


async def test_setup_registers_further_handlers_per_car() -> None:
    seen: list[tuple[str, str]] = []

    def with_offers(onboard: Onboard) -> None:
        async def offer(command: CommandMessage) -> None:
            seen.append((onboard.vin, command.id))

        onboard.registry.register("ota.offer", offer)

    events = Events()
    car = Onboard(VIN, Clock(), events, OnboardOptions(setup=with_offers))
    await car.dispatcher(_command("ota.offer", "offer-7", {"campaign": 1}))
    assert seen == [(VIN, "offer-7")]
    assert car.registry.types() == {"notify", "entitlements", "ota.offer"}

"""The broker policy as pure functions: who may publish and subscribe where (no broker)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.policy import (
    ServiceIdentity,
    ServiceRole,
    VehicleIdentity,
    is_safe_identity,
    may_publish,
    may_receive,
    may_subscribe,
    vehicle_identity,
)
from protocol.topics import TopicKind, vehicle_topic
from protocol.vin import VIN_ALPHABET, VIN_LENGTH, Vin

VIN_A = Vin("WVWZZZ1JZXW000001")
VIN_B = Vin("WBA3A5C50CF256985")
CAR_A = VehicleIdentity(VIN_A)
INGEST = ServiceIdentity("svc-ingest", frozenset({ServiceRole.INGEST}))
COMMANDER = ServiceIdentity("svc-commander", frozenset({ServiceRole.COMMANDER}))
PRESENCE = ServiceIdentity("svc-presence", frozenset({ServiceRole.PRESENCE}))
EVERY_ROLE = ServiceIdentity("svc-all", frozenset(ServiceRole))

CAR_TO_CLOUD = ("telemetry", "events", "presence", "ota/status")

vins = st.text(alphabet=VIN_ALPHABET, min_size=VIN_LENGTH, max_size=VIN_LENGTH).map(Vin)


def topic(vin: str, suffix: str) -> str:
    return f"v1/vehicles/{vin}/{suffix}"


# -- vehicles: publish ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", CAR_TO_CLOUD)
def test_vehicle_may_publish_to_its_own_car_to_cloud_topics(suffix: str) -> None:
    assert may_publish(CAR_A, topic(VIN_A, suffix))


def test_vehicle_may_not_publish_to_its_own_commands() -> None:
    assert not may_publish(CAR_A, topic(VIN_A, "commands"))


@pytest.mark.parametrize("suffix", [*CAR_TO_CLOUD, "commands"])
def test_vehicle_may_not_publish_under_another_vin(suffix: str) -> None:
    assert not may_publish(CAR_A, topic(VIN_B, suffix))


@pytest.mark.parametrize(
    "name",
    [
        "v1/vehicles/+/telemetry",
        f"v1/vehicles/{VIN_A}/+",
        f"v1/vehicles/{VIN_A}/#",
        "#",
        f"v1/vehicles/{VIN_A}/ota/+",
    ],
)
def test_vehicle_may_not_publish_with_wildcards(name: str) -> None:
    assert not may_publish(CAR_A, name)


@pytest.mark.parametrize(
    "name",
    [
        f"v1/vehicles/{VIN_A}/telemetry/",  # trailing level
        f"v1/vehicles/{VIN_A}/telemetry/extra",
        f"v1/vehicles/{VIN_A}/Telemetry",
        f"v1/vehicles/{VIN_A.lower()}/telemetry",
        f"/v1/vehicles/{VIN_A}/telemetry",
        f"v2/vehicles/{VIN_A}/telemetry",
        f"v1/vehicles/{VIN_A}/ota",
        f"v1/vehicles/{VIN_A}",
        f"$share/g/v1/vehicles/{VIN_A}/telemetry",
        "$SYS/broker/uptime",
        "",
    ],
)
def test_vehicle_may_not_publish_to_lookalike_topics(name: str) -> None:
    assert not may_publish(CAR_A, name)


@given(st.data())
def test_a_vehicle_never_may_publish_or_subscribe_under_any_other_vin(data: st.DataObject) -> None:
    own = data.draw(vins, label="own")
    other = data.draw(vins.filter(lambda v: v != own), label="other")
    car = VehicleIdentity(own)
    for kind in TopicKind:
        foreign = vehicle_topic(other, kind)
        assert not may_publish(car, foreign)
        assert not may_subscribe(car, foreign)
        assert not may_receive(car, foreign)
    # and the policy is not simply "deny all": its own telemetry is allowed
    assert may_publish(car, vehicle_topic(own, TopicKind.TELEMETRY))


# -- vehicles: subscribe --------------------------------------------------------------------------


def test_vehicle_may_subscribe_to_its_own_commands() -> None:
    assert may_subscribe(CAR_A, topic(VIN_A, "commands"))
    assert may_receive(CAR_A, topic(VIN_A, "commands"))


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "+/#",
        "v1/#",
        "v1/vehicles/#",
        "v1/vehicles/+/telemetry",
        "v1/vehicles/+/commands",
        f"v1/vehicles/{VIN_A}/#",
        f"v1/vehicles/{VIN_A}/+",
        f"v1/vehicles/{VIN_B}/commands",
        f"$share/g/v1/vehicles/{VIN_A}/commands",
        "$share/ingest/v1/vehicles/+/telemetry",
        "$SYS/#",
    ],
)
def test_vehicle_may_not_subscribe_beyond_its_own_commands(topic_filter: str) -> None:
    assert not may_subscribe(CAR_A, topic_filter)


@pytest.mark.parametrize("suffix", CAR_TO_CLOUD)
def test_vehicle_may_not_subscribe_to_its_own_uplink_topics(suffix: str) -> None:
    assert not may_subscribe(CAR_A, topic(VIN_A, suffix))
    assert not may_receive(CAR_A, topic(VIN_A, suffix))


# -- services -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic_filter",
    [
        "v1/vehicles/+/telemetry",
        "$share/ingest/v1/vehicles/+/telemetry",
        "v1/vehicles/+/events",
        "v1/vehicles/+/presence",
        "v1/vehicles/+/ota/status",
        f"v1/vehicles/{VIN_A}/telemetry",
    ],
)
def test_ingest_may_subscribe_to_fleet_uplink(topic_filter: str) -> None:
    assert may_subscribe(INGEST, topic_filter)


def test_ingest_receives_uplink_but_not_commands() -> None:
    assert may_receive(INGEST, topic(VIN_A, "telemetry"))
    assert not may_receive(INGEST, topic(VIN_A, "commands"))


@pytest.mark.parametrize(
    "name", [topic(VIN_A, "commands"), topic(VIN_A, "telemetry"), topic(VIN_A, "presence")]
)
def test_ingest_may_not_publish(name: str) -> None:
    assert not may_publish(INGEST, name)


@pytest.mark.parametrize(
    "topic_filter", ["v1/vehicles/+/commands", f"$share/ingest/v1/vehicles/{VIN_A}/commands"]
)
def test_ingest_may_not_subscribe_to_commands(topic_filter: str) -> None:
    assert not may_subscribe(INGEST, topic_filter)


def test_commander_may_publish_commands_to_any_vehicle() -> None:
    assert may_publish(COMMANDER, topic(VIN_A, "commands"))
    assert may_publish(COMMANDER, topic(VIN_B, "commands"))


@pytest.mark.parametrize(
    "name", [topic(VIN_A, "telemetry"), topic(VIN_A, "presence"), "v1/vehicles/+/commands"]
)
def test_commander_may_not_publish_uplink_or_wildcards(name: str) -> None:
    assert not may_publish(COMMANDER, name)


@pytest.mark.parametrize(
    "topic_filter",
    [
        "v1/vehicles/+/telemetry",
        f"v1/vehicles/{VIN_A}/telemetry",
        "v1/vehicles/+/commands",
        "$share/c/v1/vehicles/+/telemetry",
    ],
)
def test_commander_may_not_subscribe(topic_filter: str) -> None:
    assert not may_subscribe(COMMANDER, topic_filter)


def test_presence_role_reads_presence_only() -> None:
    assert may_subscribe(PRESENCE, "v1/vehicles/+/presence")
    assert not may_subscribe(PRESENCE, "v1/vehicles/+/telemetry")
    assert not may_publish(PRESENCE, topic(VIN_A, "presence"))


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "+",
        "+/#",
        "v1/#",
        "v1/vehicles/#",
        "v1/vehicles/+/#",
        "v1/vehicles/+/+",
        "v1/vehicles/+/ota/+",
        "v1/vehicles/+/telemetry/#",
        "v1/vehicles/not-a-vin/telemetry",
        "v1/vehicles//telemetry",
        "v1/customers/+/telemetry",
        "other/v1/vehicles/+/telemetry",
        "$SYS/#",
        "$share/ingest/#",
        "$share/ingest",
        "$share//v1/vehicles/+/telemetry/#",
        "",
    ],
)
@pytest.mark.parametrize("identity", [INGEST, COMMANDER, PRESENCE, EVERY_ROLE])
def test_no_service_is_granted_everything_or_topics_outside_the_fleet(
    identity: ServiceIdentity, topic_filter: str
) -> None:
    assert not may_subscribe(identity, topic_filter)
    assert not may_publish(identity, topic_filter)


@pytest.mark.parametrize("name", ["$SYS/broker/uptime", "v1/other", "v1/vehicles/x/telemetry"])
def test_no_service_receives_topics_outside_the_fleet(name: str) -> None:
    assert not may_receive(EVERY_ROLE, name)


def test_a_service_without_roles_may_do_nothing() -> None:
    nobody = ServiceIdentity("svc-none", frozenset())
    assert not may_subscribe(nobody, "v1/vehicles/+/telemetry")
    assert not may_publish(nobody, topic(VIN_A, "commands"))


# -- identities -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["", None, "+", "#", "a/b", "car+1", "car#", "WVWZZZ1JZXW00000/", "svc\x00ingest"]
)
def test_is_safe_identity_rejects_wildcards_separators_nul_and_empty(value: str | None) -> None:
    assert not is_safe_identity(value)


@pytest.mark.parametrize("value", ["WVWZZZ1JZXW000001", "svc-ingest", "svc_commander.2"])
def test_is_safe_identity_accepts_plain_names(value: str) -> None:
    assert is_safe_identity(value)


def test_vehicle_identity_only_for_vins() -> None:
    assert vehicle_identity(str(VIN_A)) == CAR_A
    assert vehicle_identity("svc-ingest") is None
    assert vehicle_identity("WVWZZZ1JZXW00000I") is None
    assert vehicle_identity(None) is None

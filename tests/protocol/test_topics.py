"""MQTT topic names of wire contract v1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import InvalidTopicError, InvalidVinError, Vin
from protocol.topics import (
    TOPIC_ROOT,
    VEHICLE_PUBLISH_KINDS,
    VEHICLE_SUBSCRIBE_KINDS,
    TopicKind,
    VehicleTopic,
    commands_topic,
    events_topic,
    fleet_subscription,
    ota_status_topic,
    parse_vehicle_topic,
    presence_topic,
    telemetry_topic,
    vehicle_topic,
)
from protocol.vin import VIN_ALPHABET, VIN_LENGTH

VIN = "WVWZZZ1JZXW000001"
valid_vins = st.text(alphabet=VIN_ALPHABET, min_size=VIN_LENGTH, max_size=VIN_LENGTH)


def test_topic_names_match_the_contract_table() -> None:
    assert TOPIC_ROOT == "v1/vehicles"
    assert telemetry_topic(VIN) == f"v1/vehicles/{VIN}/telemetry"
    assert events_topic(VIN) == f"v1/vehicles/{VIN}/events"
    assert presence_topic(VIN) == f"v1/vehicles/{VIN}/presence"
    assert ota_status_topic(VIN) == f"v1/vehicles/{VIN}/ota/status"
    assert commands_topic(VIN) == f"v1/vehicles/{VIN}/commands"


def test_publish_and_subscribe_kinds_partition_all_kinds() -> None:
    assert set(TopicKind) == VEHICLE_PUBLISH_KINDS | VEHICLE_SUBSCRIBE_KINDS
    assert not VEHICLE_PUBLISH_KINDS & VEHICLE_SUBSCRIBE_KINDS
    assert TopicKind.COMMANDS in VEHICLE_SUBSCRIBE_KINDS


@given(valid_vins, st.sampled_from(TopicKind))
def test_build_then_parse_round_trips(vin: str, kind: TopicKind) -> None:
    topic = vehicle_topic(vin, kind)
    parsed = parse_vehicle_topic(topic)
    assert parsed == VehicleTopic(vin=Vin(vin), kind=kind)
    assert isinstance(parsed.vin, Vin)
    assert str(parsed) == topic


@pytest.mark.parametrize("kind", list(TopicKind))
def test_every_kind_round_trips(kind: TopicKind) -> None:
    topic = f"v1/vehicles/{VIN}/{kind.value}"
    assert parse_vehicle_topic(topic).kind is kind


def test_building_a_topic_validates_the_vin() -> None:
    with pytest.raises(InvalidVinError):
        telemetry_topic("not-a-vin")
    with pytest.raises(InvalidVinError):
        vehicle_topic("+", TopicKind.TELEMETRY)


@pytest.mark.parametrize(
    "topic",
    [
        # wildcards are subscription filters, never topic names (MQTT 3.1.1 section 4.7.1)
        "v1/vehicles/+/telemetry",
        f"v1/vehicles/{VIN}/#",
        f"v1/vehicles/{VIN}/+",
        "v1/vehicles/#",
        "#",
        # wrong prefix or version
        f"v2/vehicles/{VIN}/telemetry",
        f"v1/vehicle/{VIN}/telemetry",
        f"/v1/vehicles/{VIN}/telemetry",
        f"V1/vehicles/{VIN}/telemetry",
        f"$share/ingest/v1/vehicles/{VIN}/telemetry",
        # bad VINs
        "v1/vehicles/WVWZZZ1JZXW00000O/telemetry",
        "v1/vehicles/wvwzzz1jzxw000001/telemetry",
        "v1/vehicles//telemetry",
        # unknown or malformed kinds
        f"v1/vehicles/{VIN}/unknown",
        f"v1/vehicles/{VIN}/ota",
        f"v1/vehicles/{VIN}/ota/status/extra",
        f"v1/vehicles/{VIN}/telemetry/",
        f"v1/vehicles/{VIN}/Telemetry",
        f"v1/vehicles/{VIN}/",
        f"v1/vehicles/{VIN}",
        "",
    ],
)
def test_parse_rejects_anything_but_a_concrete_vehicle_topic(topic: str) -> None:
    with pytest.raises(InvalidTopicError) as info:
        parse_vehicle_topic(topic)
    assert info.value.code == "invalid_topic"
    assert info.value.value == topic


def test_bad_vin_in_topic_is_a_topic_error_chained_to_the_vin_error() -> None:
    with pytest.raises(InvalidTopicError) as info:
        parse_vehicle_topic("v1/vehicles/SHORT/telemetry")
    assert isinstance(info.value.__cause__, InvalidVinError)


@given(st.text(max_size=80))
def test_parse_never_raises_anything_but_invalid_topic(topic: str) -> None:
    try:
        parsed = parse_vehicle_topic(topic)
    except InvalidTopicError:
        return
    assert str(parsed) == topic


def test_fleet_subscription_filters() -> None:
    assert fleet_subscription(TopicKind.TELEMETRY) == "v1/vehicles/+/telemetry"
    assert fleet_subscription(TopicKind.OTA_STATUS) == "v1/vehicles/+/ota/status"
    # MQTT 5.0 section 4.8.2: $share/{ShareName}/{filter}
    assert (
        fleet_subscription(TopicKind.TELEMETRY, share_group="ingest")
        == "$share/ingest/v1/vehicles/+/telemetry"
    )

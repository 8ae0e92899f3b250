"""Who may connect, publish and subscribe: the broker policy as pure functions. No I/O.

The same policy is enforced by the embedded amqtt broker (``broker.amqtt_plugins``) and exported
for Mosquitto. A vehicle's identity is its VIN (username == client id == VIN). It may publish
only to its own ``v1/vehicles/{VIN}/{telemetry,events,presence,ota/status}`` and subscribe only
to its own ``v1/vehicles/{VIN}/commands``; wildcards are never granted to vehicles. Backend
services get the fleet-wide rights their role needs and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocol.errors import InvalidVinError
from protocol.topics import (
    TOPIC_ROOT,
    VEHICLE_PUBLISH_KINDS,
    VEHICLE_SUBSCRIBE_KINDS,
    TopicKind,
    vehicle_topic,
)
from protocol.vin import Vin

# Characters that must never appear in an identity: MQTT wildcards and the level separator
# (they would widen %u/%c ACL patterns) and NUL (forbidden in MQTT strings, section 1.5.3).
_FORBIDDEN_IDENTITY_CHARS = frozenset("+#/\x00")


class ServiceRole(StrEnum):
    INGEST = "ingest"  # reads what cars send
    COMMANDER = "commander"  # writes commands to cars (notifier, OTA)
    PRESENCE = "presence"  # reads presence


@dataclass(frozen=True, slots=True)
class VehicleIdentity:
    vin: Vin


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    name: str
    roles: frozenset[ServiceRole]


Identity = VehicleIdentity | ServiceIdentity

_SERVICE_SUBSCRIBE: dict[ServiceRole, frozenset[TopicKind]] = {
    ServiceRole.INGEST: frozenset(
        {TopicKind.TELEMETRY, TopicKind.EVENTS, TopicKind.PRESENCE, TopicKind.OTA_STATUS}
    ),
    ServiceRole.PRESENCE: frozenset({TopicKind.PRESENCE}),
    ServiceRole.COMMANDER: frozenset(),
}
_SERVICE_PUBLISH: dict[ServiceRole, frozenset[TopicKind]] = {
    ServiceRole.COMMANDER: frozenset({TopicKind.COMMANDS}),
    ServiceRole.INGEST: frozenset(),
    ServiceRole.PRESENCE: frozenset(),
}


def service_subscribe_kinds(role: ServiceRole) -> frozenset[TopicKind]:
    return _SERVICE_SUBSCRIBE[role]


def service_publish_kinds(role: ServiceRole) -> frozenset[TopicKind]:
    return _SERVICE_PUBLISH[role]


def is_safe_identity(value: str | None) -> bool:
    return bool(value) and not (set(value or "") & _FORBIDDEN_IDENTITY_CHARS)


def vehicle_identity(username: str | None) -> VehicleIdentity | None:
    """The vehicle a username names, or None when it is not a VIN."""
    if username is None:
        return None
    try:
        return VehicleIdentity(Vin(username))
    except InvalidVinError:
        return None


def _strip_share(topic_filter: str) -> str:
    """``$share/{group}/{filter}`` -> ``{filter}`` (MQTT 5 section 4.8.2)."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        return parts[2] if len(parts) == 3 else ""
    return topic_filter


def _fleet_kind(topic: str) -> TopicKind | None:
    """The kind of a topic or filter under ``v1/vehicles/{VIN or +}/``, else None."""
    prefix = TOPIC_ROOT + "/"
    if not topic.startswith(prefix):
        return None
    rest = topic[len(prefix) :]
    vin_level, _, suffix = rest.partition("/")
    if not vin_level or "#" in vin_level:
        return None
    if vin_level != "+":
        try:
            Vin(vin_level)
        except InvalidVinError:
            return None
    try:
        return TopicKind(suffix)
    except ValueError:
        return None


def may_publish(identity: Identity, topic: str) -> bool:
    if "+" in topic or "#" in topic:
        return False  # wildcards are never valid in a topic name (MQTT section 4.7.1)
    if isinstance(identity, VehicleIdentity):
        return any(topic == vehicle_topic(identity.vin, k) for k in VEHICLE_PUBLISH_KINDS)
    kind = _fleet_kind(topic)
    return kind is not None and any(kind in _SERVICE_PUBLISH[r] for r in identity.roles)


def may_subscribe(identity: Identity, topic_filter: str) -> bool:
    if isinstance(identity, VehicleIdentity):
        return any(topic_filter == vehicle_topic(identity.vin, k) for k in VEHICLE_SUBSCRIBE_KINDS)
    kind = _fleet_kind(_strip_share(topic_filter))
    return kind is not None and any(kind in _SERVICE_SUBSCRIBE[r] for r in identity.roles)


def may_receive(identity: Identity, topic: str) -> bool:
    """Delivery check: a second line of defence behind the subscribe check."""
    if isinstance(identity, VehicleIdentity):
        return any(topic == vehicle_topic(identity.vin, k) for k in VEHICLE_SUBSCRIBE_KINDS)
    kind = _fleet_kind(topic)
    return kind is not None and any(kind in _SERVICE_SUBSCRIBE[r] for r in identity.roles)

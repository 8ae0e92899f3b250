"""Pydantic models of the v1 messages, shared by the simulator (which builds them) and the
cloud (which parses them).

Messages from cars keep unknown fields (``extra="allow"``): a newer car must not be rejected by
an older backend. Signal values are strict JSON scalars: a string is never coerced into a
number. Ingest validates telemetry sample by sample (see ``ingest.validation``) so that one bad
sample does not cost the good ones; these models define what a good sample is.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

#: One VSS signal value. bool is listed first so ``true`` never becomes 1.
SignalValue = StrictBool | StrictInt | StrictFloat | StrictStr

#: UTC epoch milliseconds. Bounds keep it a plausible 64-bit value (1970 .. 2286).
EpochMillis = Annotated[int, Field(ge=0, le=9_999_999_999_999, strict=True)]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]

MAX_SAMPLES_PER_MESSAGE = 3600
MAX_SIGNALS_PER_SAMPLE = 512


class CarMessage(BaseModel):
    """Base of every car -> cloud message: unknown fields are kept, not dropped."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Sample(CarMessage):
    """All signals a car read at one instant ``ts``."""

    ts: EpochMillis
    signals: dict[str, SignalValue] = Field(max_length=MAX_SIGNALS_PER_SAMPLE)


class TelemetryMessage(CarMessage):
    """``v1/vehicles/{VIN}/telemetry``: a batch of samples, in time order."""

    seq: Seq
    samples: list[Sample] = Field(min_length=1, max_length=MAX_SAMPLES_PER_MESSAGE)


class EventType(StrEnum):
    DTC = "dtc"
    TRIP_START = "trip_start"
    TRIP_END = "trip_end"
    CRASH = "crash"
    CHARGING_START = "charging_start"
    CHARGING_END = "charging_end"


class EventMessage(CarMessage):
    """``v1/vehicles/{VIN}/events``: a discrete event, e.g. a DTC set or cleared.

    ``type`` is a free string so new event types pass through older backends; the well-known
    ones are listed in :class:`EventType`.
    """

    seq: Seq
    ts: EpochMillis
    type: Annotated[str, Field(min_length=1, max_length=64)]
    code: str | None = None
    active: StrictBool | None = None


class PresenceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class PresenceMessage(CarMessage):
    """``v1/vehicles/{VIN}/presence``: retained, and the car's last will (state ``offline``)."""

    state: PresenceState
    ts: EpochMillis | None = None


class CommandType(StrEnum):
    OTA_OFFER = "ota.offer"
    ENTITLEMENTS = "entitlements"
    NOTIFY = "notify"
    DIAGNOSE = "diagnose"


class CommandMessage(BaseModel):
    """``v1/vehicles/{VIN}/commands``: cloud -> car. Built by the backend, so strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=128)]
    type: CommandType
    ts: EpochMillis
    payload: dict[str, Any] = Field(default_factory=dict)


def encode(message: BaseModel) -> bytes:
    """The wire form of a message: compact UTF-8 JSON without nulls for unset fields."""
    return message.model_dump_json(exclude_none=True).encode()

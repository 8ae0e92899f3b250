"""What campaigns read about the fleet, in one place: the registry (``vehicles``,
``vehicle_ecus``), ownership and the owner's profile and consent (``vehicle_ownership``,
``customers``, ``customer_consents``), the latest state (ingest's ``vehicle_state``) and the
software the car last reported (``ota_ecu_software``).

These tables belong to the api and ingest packages; this module is the read contract with
them, as the ``outbox_append`` function is for writes (ADR 0007). A vehicle's market region is
its owner's country and its local time zone its owner's, else the campaign's default zone:
the registry records neither (yet).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from ota.campaigns.preconditions import SIGNALS, StateValue
from ota.campaigns.targeting import EcuFacts, VehicleFacts

AUTO_INSTALL_PURPOSE = "ota_auto_install"

_VEHICLES = """
SELECT v.vin, v.brand, v.model, v.model_year, v.powertrain, v.created_at, c.country
FROM vehicles v
LEFT JOIN vehicle_ownership o ON o.vin = v.vin AND o.ended_at IS NULL
LEFT JOIN customers c ON c.id = o.customer_id
WHERE v.revoked_at IS NULL
  AND v.created_at <= $2
  AND ($1::timestamptz IS NULL OR v.created_at > $1)
  AND ($3::text[] IS NULL OR v.vin = ANY($3))
ORDER BY v.vin
"""

# Reported software wins over the registry's factory versions; ECUs only ever reported (a
# replaced unit) count too.
_ECUS = """
SELECT e.vin, e.ecu_id AS serial, coalesce(s.hardware_id, e.hardware_id) AS hardware_id,
       coalesce(s.version, e.software_version) AS version
FROM vehicle_ecus e
LEFT JOIN ota_ecu_software s ON s.vin = e.vin AND s.ecu_serial = e.ecu_id
WHERE e.vin = ANY($1)
UNION ALL
SELECT s.vin, s.ecu_serial, s.hardware_id, s.version
FROM ota_ecu_software s
WHERE s.vin = ANY($1)
  AND NOT EXISTS (SELECT 1 FROM vehicle_ecus e WHERE e.vin = s.vin AND e.ecu_id = s.ecu_serial)
ORDER BY 1, 2
"""

_OFFER_CONTEXT = """
SELECT v.vin, v.powertrain, o.customer_id, cu.timezone, coalesce(cc.granted, false) AS auto
FROM vehicles v
LEFT JOIN vehicle_ownership o ON o.vin = v.vin AND o.ended_at IS NULL
LEFT JOIN customers cu ON cu.id = o.customer_id
LEFT JOIN customer_consents cc ON cc.customer_id = o.customer_id AND cc.purpose = $2
WHERE v.vin = ANY($1)
"""


async def vehicles(
    conn: asyncpg.Connection,
    *,
    registered_after: datetime | None,
    registered_until: datetime,
    vins: Collection[str] | None = None,
) -> list[VehicleFacts]:
    rows = await conn.fetch(
        _VEHICLES, registered_after, registered_until, sorted(vins) if vins else None
    )
    ecus: dict[str, list[EcuFacts]] = defaultdict(list)
    for row in await conn.fetch(_ECUS, [r["vin"] for r in rows]):
        ecus[row["vin"]].append(EcuFacts(row["serial"], row["hardware_id"], row["version"]))
    return [
        VehicleFacts(
            vin=r["vin"],
            brand=r["brand"],
            model=r["model"],
            model_year=r["model_year"],
            powertrain=r["powertrain"],
            region=r["country"],
            registered_at=r["created_at"],
            ecus=tuple(ecus[r["vin"]]),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class OfferContext:
    """What deciding on an offer needs to know about one vehicle."""

    vin: str
    powertrain: str
    owner: UUID | None
    timezone: str | None  # the owner's
    auto_install: bool  # the owner granted ota_auto_install
    state: dict[str, StateValue] = field(default_factory=dict)

    @property
    def requires_consent(self) -> bool:
        """An owner must agree unless they consented to automatic installs. A car without an
        owner is the OEM's own (stock, test fleet): the OEM decided by running the campaign."""
        return self.owner is not None and not self.auto_install


async def offer_contexts(conn: asyncpg.Connection, vins: Sequence[str]) -> dict[str, OfferContext]:
    contexts = {
        r["vin"]: OfferContext(
            r["vin"], r["powertrain"], r["customer_id"], r["timezone"], r["auto"]
        )
        for r in await conn.fetch(_OFFER_CONTEXT, list(vins), AUTO_INSTALL_PURPOSE)
    }
    for row in await conn.fetch(
        "SELECT vin, signal, ts, value FROM vehicle_state"
        " WHERE vin = ANY($1) AND signal = ANY($2) AND value IS NOT NULL",
        list(contexts),
        list(SIGNALS),
    ):
        contexts[row["vin"]].state[row["signal"]] = StateValue(row["value"], row["ts"])
    return contexts

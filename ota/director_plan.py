"""What the director wants for one vehicle, read from the database: its in-flight campaign
assignment (the image and the ECUs chosen at enrollment) and its last verified version report
(nonce and counter). Uptane 5.3.2: the director decides from the vehicle's own report and the
OEM's campaign, nothing else.

Only an accepted update is listed (status accepted .. installing): an offer waiting for the
owner's consent is not yet an instruction to install. After the install, or when the campaign
is cancelled before the car started, the vehicle's targets are empty again.
"""

from __future__ import annotations

import json

import asyncpg

from ota.director_core import DirectedImage, DirectorPlan
from ota.image_target import ImageSpec, ImageTarget
from ota.status_machine import IN_FLIGHT

_ASSIGNMENT = """
SELECT a.campaign_id, a.ecus, c.target_name, c.target_version, c.target_sha256,
       c.target_length, c.hardware_ids, c.release_counter
FROM ota_campaign_vehicles a
JOIN ota_campaigns c ON c.id = a.campaign_id
WHERE a.vin = $1 AND a.status = ANY($2::text[])
ORDER BY a.accepted_at NULLS LAST, a.campaign_id
"""


async def load_plan(conn: asyncpg.Connection, vin: str) -> DirectorPlan:
    report = await conn.fetchrow(
        "SELECT counter, nonce FROM ota_version_reports WHERE vin = $1", vin
    )
    rows = await conn.fetch(_ASSIGNMENT, vin, sorted(s.value for s in IN_FLIGHT))
    images: list[DirectedImage] = []
    campaign_id: str | None = None
    # The schema allows one in-flight update per vehicle (a unique index); take the first.
    for row in rows[:1]:
        campaign_id = str(row["campaign_id"])
        image = ImageTarget(
            ImageSpec(
                name=row["target_name"],
                version=row["target_version"],
                hardware_ids=tuple(row["hardware_ids"]),
                release_counter=row["release_counter"],
            ),
            row["target_length"],
            row["target_sha256"],
        )
        for ecu in json.loads(row["ecus"]):
            images.append(DirectedImage(ecu["serial"], ecu["hardware_id"], image))
    return DirectorPlan(
        vin=vin,
        images=tuple(images),
        report_nonce=report["nonce"] if report else None,
        report_counter=report["counter"] if report else None,
        campaign_id=campaign_id,
    )

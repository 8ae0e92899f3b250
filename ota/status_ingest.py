"""What the backend does with each message on ``v1/vehicles/{VIN}/ota/status``: verify the
signed version report, keep it as the vehicle's latest (the director computes from it), bring
the installed-software record up to date and move the campaign update's status (telling the
owner how it ended: ``ota.update_result``, :mod:`ota.update_results`).

All of it in one transaction, so a report is either wholly taken into account or not at all.
Bad reports are counted by reason and logged once; they are never retried (a forged or
replayed report will not become valid by waiting), so the MQTT layer acknowledges them.
A valid report whose progress does not fit the update's status (a late duplicate, a report
for a cancelled campaign) still updates the software record: what is installed is a fact.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ota.campaigns.errors import StatusTransitionError, UpdateNotFoundError
from ota.campaigns.updates import apply
from ota.software_record import record_report
from ota.status_keys import keys_for
from ota.status_machine import UpdateStatus
from ota.status_report import (
    DEFAULT_MAX_REPORT_BYTES,
    StatusReportError,
    VerifiedReport,
    verify_report,
)
from ota.update_results import append_update_result

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    accepted: bool
    reason: str | None = None  # why the report, or its progress, was not taken
    status: UpdateStatus | None = None  # the update's status after the report


class StatusIngest:
    def __init__(
        self, pool: asyncpg.Pool, *, max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES
    ) -> None:
        self._pool = pool
        self._max_bytes = max_report_bytes
        self.accepted = 0
        self.rejected: Counter[str] = Counter()

    async def handle(self, vin: str, payload: bytes, now: datetime) -> IngestOutcome:
        async with self._pool.acquire() as conn, conn.transaction():
            last = await conn.fetchval(
                "SELECT counter FROM ota_version_reports WHERE vin = $1 FOR UPDATE", vin
            )
            try:
                report = verify_report(
                    payload,
                    vin=vin,
                    keys=await keys_for(conn, vin),
                    last_counter=last,
                    now=now,
                    max_bytes=self._max_bytes,
                )
            except StatusReportError as exc:
                return self._rejected(vin, exc.reason, exc.message)
            if not await _store_report(conn, vin, report, now):
                return self._rejected(vin, "report_replayed", "a newer report was stored first")
            body = report.body
            update = body.update
            await record_report(
                conn,
                vin,
                body.ecus,
                campaign_id=update.campaign_id if update else None,
                installed_at=report.reported_at,
                now=now,
            )
            self.accepted += 1
            if update is None:
                return IngestOutcome(True)
            try:
                moved = await apply(
                    conn,
                    update.campaign_id,
                    vin,
                    UpdateStatus(update.status),
                    now,
                    code=update.code,
                    detail=update.detail,
                )
            except (StatusTransitionError, UpdateNotFoundError) as exc:
                self.rejected[exc.code] += 1
                log.info("OTA: %s progress not applied: %s", vin, exc, extra={"code": exc.code})
                return IngestOutcome(True, reason=exc.code)
            if moved.changed:
                await append_update_result(conn, update.campaign_id, vin, moved.record, now)
            return IngestOutcome(True, status=moved.record.status)

    def _rejected(self, vin: str, reason: str, message: str) -> IngestOutcome:
        self.rejected[reason] += 1
        log.warning("OTA: report from %s rejected: %s", vin, message, extra={"reason": reason})
        return IngestOutcome(False, reason=reason)


async def _store_report(
    conn: asyncpg.Connection, vin: str, report: VerifiedReport, now: datetime
) -> bool:
    """Keep the report as the vehicle's latest; False when a newer one got there first."""
    stored = await conn.fetchval(
        "INSERT INTO ota_version_reports (vin, counter, nonce, reported_at, received_at, body)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (vin) DO UPDATE SET counter = EXCLUDED.counter, nonce = EXCLUDED.nonce,"
        " reported_at = EXCLUDED.reported_at, received_at = EXCLUDED.received_at,"
        " body = EXCLUDED.body WHERE ota_version_reports.counter < EXCLUDED.counter"
        " RETURNING true",
        vin,
        report.body.counter,
        report.body.nonce,
        report.reported_at,
        now,
        report.raw,
    )
    return bool(stored)

"""Offers after the decision: the customer's list, opened and clicked, partners and their keys,
redemption, and the KPIs per rule and campaign."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.offers.codes import normalise_code

_OFFER_COLUMNS = (
    "id, rule_id, campaign, kind, category, vin, code, partner_id, place_id, title,"
    " details::text AS details, triggered_at, expires_at, opened_at, clicked_at, redeemed_at,"
    " redeemed_place_id"
)


class OfferNotFoundError(LookupError):
    code = "offer_not_found"


class OfferAlreadyRedeemedError(ValueError):
    code = "offer_already_redeemed"

    def __init__(self, redeemed_at: datetime) -> None:
        super().__init__(f"this code was redeemed at {redeemed_at.isoformat()}")
        self.redeemed_at = redeemed_at


class OfferExpiredError(ValueError):
    code = "offer_expired"

    def __init__(self, expires_at: datetime) -> None:
        super().__init__(f"this code expired at {expires_at.isoformat()}")
        self.expires_at = expires_at


class PartnerExistsError(ValueError):
    code = "offer_partner_exists"


def offer_row(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    data["details"] = json.loads(data["details"])
    return data


async def my_offers(
    conn: asyncpg.Connection, customer_id: UUID, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    total = await conn.fetchval("SELECT count(*) FROM offers WHERE customer_id = $1", customer_id)
    rows = await conn.fetch(
        f"SELECT {_OFFER_COLUMNS} FROM offers WHERE customer_id = $1"
        " ORDER BY triggered_at DESC, id LIMIT $2 OFFSET $3",
        customer_id,
        limit,
        offset,
    )
    return [offer_row(r) for r in rows], int(total)


async def mark(
    conn: asyncpg.Connection, customer_id: UUID, offer_id: UUID, what: str, now: datetime
) -> dict[str, Any]:
    """Record the first ``opened`` or ``clicked`` (clicking opens it too); idempotent."""
    column = {"opened": "opened_at", "clicked": "clicked_at"}[what]
    extra = ", opened_at = coalesce(opened_at, $3)" if what == "clicked" else ""
    row = await conn.fetchrow(
        f"UPDATE offers SET {column} = coalesce({column}, $3){extra}"
        f" WHERE id = $1 AND customer_id = $2 RETURNING {_OFFER_COLUMNS}",
        offer_id,
        customer_id,
        now,
    )
    if row is None:
        raise OfferNotFoundError(f"no offer {offer_id}")
    return offer_row(row)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_partner_key() -> str:
    """256 random bits; only :func:`key_hash` of it is stored."""
    return "flp_" + secrets.token_urlsafe(32)


async def create_partner(
    conn: asyncpg.Connection, partner_id: str, name: str, now: datetime
) -> str:
    """Create a partner and return its API key (shown once; only its hash is kept)."""
    key = new_partner_key()
    inserted = await conn.fetchval(
        "INSERT INTO offer_partners (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (id) DO NOTHING RETURNING 1",
        partner_id,
        name,
        key_hash(key),
        now,
    )
    if inserted is None:
        raise PartnerExistsError(f"partner {partner_id!r} exists already")
    return key


class PartnerNotFoundError(LookupError):
    code = "offer_partner_not_found"


async def rotate_partner_key(conn: asyncpg.Connection, partner_id: str) -> str:
    """A new API key for the partner; the old one stops working at once."""
    key = new_partner_key()
    updated = await conn.fetchval(
        "UPDATE offer_partners SET key_hash = $2 WHERE id = $1 RETURNING 1",
        partner_id,
        key_hash(key),
    )
    if updated is None:
        raise PartnerNotFoundError(f"no partner {partner_id!r}")
    return key


async def partner_for_key(conn: asyncpg.Connection, key: str) -> str | None:
    partner: str | None = await conn.fetchval(
        "SELECT id FROM offer_partners WHERE key_hash = $1 AND disabled_at IS NULL", key_hash(key)
    )
    return partner


async def redeem(
    conn: asyncpg.Connection,
    partner_id: str,
    code: str,
    place_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Redeem ``code`` for ``partner_id``. A code of another partner is unknown to this one
    (404, never 403: a partner learns nothing of others' codes)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_OFFER_COLUMNS} FROM offers WHERE code = $1 AND partner_id = $2 FOR UPDATE",
            normalise_code(code),
            partner_id,
        )
        if row is None:
            raise OfferNotFoundError("no such code for this partner")
        if row["redeemed_at"] is not None:
            raise OfferAlreadyRedeemedError(row["redeemed_at"])
        if row["expires_at"] <= now:
            raise OfferExpiredError(row["expires_at"])
        updated = await conn.fetchrow(
            f"UPDATE offers SET redeemed_at = $2, redeemed_place_id = $3 WHERE id = $1"
            f" RETURNING {_OFFER_COLUMNS}",
            row["id"],
            now,
            place_id or row["place_id"],
        )
    return offer_row(updated)


@dataclass(frozen=True, slots=True)
class KpiRow:
    rule_id: str
    campaign: str
    eligible: int
    suppressed: dict[str, int]
    sent: int
    opened: int
    clicked: int
    redeemed: int
    conversion_rate: float | None  # redeemed / sent
    trigger_to_delivery_p50_s: float | None
    trigger_to_delivery_p99_s: float | None


_KPIS = """
WITH d AS (
    SELECT rule_id, campaign, count(*) AS eligible,
           count(*) FILTER (WHERE outcome = 'sent') AS sent
    FROM offer_decisions
    WHERE decided_at >= $1 AND decided_at < $2
    GROUP BY rule_id, campaign
), s AS (
    SELECT rule_id, campaign, jsonb_object_agg(reason, n) AS suppressed
    FROM (SELECT rule_id, campaign, reason, count(*) AS n FROM offer_decisions
          WHERE outcome = 'suppressed' AND decided_at >= $1 AND decided_at < $2
          GROUP BY rule_id, campaign, reason) x
    GROUP BY rule_id, campaign
), o AS (
    SELECT o.rule_id, o.campaign,
           count(o.opened_at) AS opened, count(o.clicked_at) AS clicked,
           count(o.redeemed_at) AS redeemed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.at - o.detected_at))
               AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM t.at - o.detected_at))
               AS p99
    FROM offers o
    LEFT JOIN LATERAL (
        SELECT coalesce(nd.delivered_at, nd.sent_at) AS at
        FROM notifications n JOIN notification_deliveries nd
             ON nd.notification_id = n.id AND nd.channel = 'app'
        WHERE n.customer_id = o.customer_id AND n.subject = 'offer:' || o.id
        ORDER BY n.id LIMIT 1
    ) t ON true
    WHERE o.decided_at >= $1 AND o.decided_at < $2
    GROUP BY o.rule_id, o.campaign
)
SELECT d.rule_id, d.campaign, d.eligible, d.sent, coalesce(s.suppressed, '{}')::text AS suppressed,
       coalesce(o.opened, 0) AS opened, coalesce(o.clicked, 0) AS clicked,
       coalesce(o.redeemed, 0) AS redeemed, o.p50, o.p99
FROM d LEFT JOIN s USING (rule_id, campaign) LEFT JOIN o USING (rule_id, campaign)
WHERE ($3::text IS NULL OR d.rule_id = $3) AND ($4::text IS NULL OR d.campaign = $4)
ORDER BY d.campaign, d.rule_id
"""


async def kpis(
    conn: asyncpg.Connection,
    start: datetime,
    end: datetime,
    *,
    rule_id: str | None = None,
    campaign: str | None = None,
) -> list[KpiRow]:
    """Per rule and campaign, over the decisions made in ``[start, end)``."""
    rows = await conn.fetch(_KPIS, start, end, rule_id, campaign)
    return [
        KpiRow(
            rule_id=r["rule_id"],
            campaign=r["campaign"],
            eligible=r["eligible"],
            suppressed=json.loads(r["suppressed"]),
            sent=r["sent"],
            opened=r["opened"],
            clicked=r["clicked"],
            redeemed=r["redeemed"],
            conversion_rate=round(r["redeemed"] / r["sent"], 4) if r["sent"] else None,
            trigger_to_delivery_p50_s=None if r["p50"] is None else round(r["p50"], 3),
            trigger_to_delivery_p99_s=None if r["p99"] is None else round(r["p99"], 3),
        )
        for r in rows
    ]


KPI_CSV_COLUMNS = (
    "rule_id",
    "campaign",
    "eligible",
    "sent",
    "opened",
    "clicked",
    "redeemed",
    "conversion_rate",
    "trigger_to_delivery_p50_s",
    "trigger_to_delivery_p99_s",
    "suppressed",
)


def kpis_csv(rows: list[KpiRow]) -> str:
    """One line per rule; ``suppressed`` as ``reason=n;reason=n``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KPI_CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.rule_id,
                row.campaign,
                row.eligible,
                row.sent,
                row.opened,
                row.clicked,
                row.redeemed,
                "" if row.conversion_rate is None else row.conversion_rate,
                "" if row.trigger_to_delivery_p50_s is None else row.trigger_to_delivery_p50_s,
                "" if row.trigger_to_delivery_p99_s is None else row.trigger_to_delivery_p99_s,
                ";".join(f"{k}={v}" for k, v in sorted(row.suppressed.items())),
            ]
        )
    return out.getvalue()

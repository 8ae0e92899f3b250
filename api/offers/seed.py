"""Offer seed data for a new installation (``fleetlink up``, the evaluation): the shipped
Munich places as geofences, the partners of the default rules (their stations are the places of
their brand), and the default rules. Safe to call on every start: what exists is left alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import asyncpg

from api.offers.store import key_hash, new_partner_key
from diagnostics.offers.config_store import ensure_rules, upsert_places
from diagnostics.offers.geo import Circle
from diagnostics.offers.place_import import geofences_from_places
from diagnostics.offers.rules import DEFAULT_PARTNERS, default_rules
from protocol.places import PlaceKind, load_places

#: A dealer's or workshop's area: "near the dealer" for a booking offer is a stop within it.
DEALER_RADIUS_M = 1000.0


async def seed_offers(conn: asyncpg.Connection, *, now: datetime) -> None:
    async with conn.transaction():
        if await conn.fetchval("SELECT count(*) FROM offer_places") == 0:
            brands = {brand.lower(): pid for pid, (_, brand) in DEFAULT_PARTNERS.items()}
            fences = []
            for place in geofences_from_places(load_places("munich")):
                fence = place
                if fence.kind in (PlaceKind.DEALER, PlaceKind.SERVICE_CENTRE):
                    lat, lon = fence.geometry.anchor
                    fence = replace(fence, geometry=Circle(lat, lon, DEALER_RADIUS_M))
                partner = brands.get(fence.brand.lower())
                fences.append(fence if partner is None else replace(fence, partner_id=partner))
            await upsert_places(conn, fences, now=now)
        for partner_id, (name, _) in DEFAULT_PARTNERS.items():
            # A random key nobody knows: an operator issues one with
            # POST /v1/offers/partners/{id}/key before the partner's tills go live.
            await conn.execute(
                "INSERT INTO offer_partners (id, name, key_hash, created_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                partner_id,
                name,
                key_hash(new_partner_key()),
                now,
            )
        await ensure_rules(conn, default_rules(), now=now)

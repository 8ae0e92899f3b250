"""Redeemable offer codes: ``FL-XXXX-XXXX``, 8 symbols of Crockford's base32 (no I, L, O, U:
nothing a cashier misreads), 40 bits from the OS's CSPRNG. Guessing one of a million live codes
takes about 2^40 / 10^6 = 1.1 million tries per hit, and redemption needs a partner key
besides. A drawn code already in use is drawn again (the decisions are serialised, so nothing
else can take it before the insert; the unique index is the backstop)."""

from __future__ import annotations

import secrets

import asyncpg

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ATTEMPTS = 5
_MISREAD = str.maketrans("OIL", "011")


def random_code() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"FL-{symbols[:4]}-{symbols[4:]}"


def normalise_code(text: str) -> str:
    """What a partner types: any case, with or without dashes or spaces, O for 0, I/L for 1."""
    raw = text.upper().replace("-", "").replace(" ", "")
    raw = raw.removeprefix("FL")
    raw = raw.translate(_MISREAD)
    return f"FL-{raw[:4]}-{raw[4:]}" if len(raw) == 8 else text.strip().upper()


async def new_code(conn: asyncpg.Connection) -> str:
    for _ in range(_ATTEMPTS):
        code = random_code()
        if await conn.fetchval("SELECT 1 FROM offers WHERE code = $1", code) is None:
            return code
    raise RuntimeError("could not draw an unused offer code")  # 2^40 space: never in practice

"""Vehicle Identification Number value object (ISO 3779).

A VIN is 17 characters from the digits and capital letters without I, O and Q (ISO 3779 leaves
them out so they are not mistaken for 1 and 0). The check digit at position 9 is mandatory only
in North America (49 CFR 565), so it is offered as :func:`check_digit` but not enforced.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from protocol.errors import InvalidVinError

VIN_LENGTH = 17
VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
#: The whole-string pattern, for schemas and validators outside this module (OpenAPI, SQL).
VIN_PATTERN = "^[0-9A-HJ-NPR-Z]{17}$"
_VIN_RE = re.compile(VIN_PATTERN)

# 49 CFR 565.15: transliteration of letters and the weight of each position.
_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


class Vin(str):
    """A syntactically valid VIN. Construct with ``Vin("WVWZZZ1JZXW000001")``."""

    __slots__ = ()

    def __new__(cls, value: object) -> Vin:
        if isinstance(value, Vin):
            return value
        if not isinstance(value, str):
            raise InvalidVinError(f"VIN must be a string, got {type(value).__name__}", value=value)
        if len(value) != VIN_LENGTH:
            raise InvalidVinError(
                f"VIN must be {VIN_LENGTH} characters, got {len(value)}: {value[:40]!r}",
                value=value,
            )
        if not _VIN_RE.fullmatch(value):
            bad = sorted({c for c in value if c not in VIN_ALPHABET})
            raise InvalidVinError(
                f"VIN {value!r} has characters outside ISO 3779 (digits and A-Z without I, O, Q):"
                f" {''.join(bad)!r}",
                value=value,
            )
        return super().__new__(cls, value)

    @property
    def wmi(self) -> str:
        """World manufacturer identifier (positions 1-3)."""
        return self[:3]

    @property
    def has_valid_check_digit(self) -> bool:
        return self[8] == check_digit(self)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            _validate_for_pydantic,
            core_schema.str_schema(),
            serialization=core_schema.to_string_ser_schema(),
        )


def _validate_for_pydantic(value: str) -> Vin:
    try:
        return Vin(value)
    except InvalidVinError as exc:
        # pydantic turns ValueError into a 422-style validation error with this message.
        raise ValueError(str(exc)) from exc


def check_digit(vin_prefix: str) -> str:
    """The North American check digit for the 17 characters (position 9 is ignored)."""
    total = sum(_TRANSLITERATION[c] * w for c, w in zip(vin_prefix, _WEIGHTS, strict=False))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def with_check_digit(vin: str) -> Vin:
    """Return ``vin`` with position 9 replaced by its correct check digit."""
    return Vin(vin[:8] + check_digit(vin) + vin[9:])


VinField = Annotated[Vin, "ISO 3779 VIN"]

"""Work-order amounts. Pure: no I/O. Money is integer minor units (cents) of one currency.

A line's amount is quantity x unit price, rounded half up to the cent once per line (as the
invoice shows it). Lines covered by warranty, a recall or goodwill are not charged to the
customer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

LineKind = Literal["part", "labour"]
Coverage = Literal["customer", "warranty", "recall", "goodwill"]


@dataclass(frozen=True, slots=True)
class PricedLine:
    kind: LineKind
    quantity: Decimal
    unit_price_cents: int
    coverage: Coverage


@dataclass(frozen=True, slots=True)
class Totals:
    parts_cents: int
    labour_cents: int
    covered_cents: int
    customer_cents: int

    @property
    def total_cents(self) -> int:
        return self.parts_cents + self.labour_cents


def line_amount_cents(quantity: Decimal, unit_price_cents: int) -> int:
    return int((quantity * unit_price_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def totals(lines: Iterable[PricedLine]) -> Totals:
    parts = labour = covered = 0
    for line in lines:
        amount = line_amount_cents(line.quantity, line.unit_price_cents)
        if line.kind == "part":
            parts += amount
        else:
            labour += amount
        if line.coverage != "customer":
            covered += amount
    return Totals(parts, labour, covered, parts + labour - covered)

"""Who is calling: a role, a subject, and for service centres the centres they act for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    CUSTOMER = "customer"
    SERVICE_CENTER = "service_center"
    FLEET_ADMIN = "fleet_admin"


#: The subject of the static admin token (``fleetlink up`` prints it; ``api.deps``).
STATIC_ADMIN_SUBJECT = "admin-token"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``subject`` is ``customer:<uuid>``, ``client:<client id>`` or
    the static admin token's ``admin-token``."""

    subject: str
    role: Role
    centres: frozenset[str] = frozenset()

    @classmethod
    def customer(cls, customer_id: UUID) -> Principal:
        return cls(f"customer:{customer_id}", Role.CUSTOMER)

    @classmethod
    def client(cls, client_id: str, role: Role, centres: frozenset[str]) -> Principal:
        return cls(f"client:{client_id}", role, centres)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.FLEET_ADMIN

    @property
    def customer_id(self) -> UUID | None:
        """The customer this principal is, or None for clients and admins."""
        kind, _, rest = self.subject.partition(":")
        return UUID(rest) if self.role is Role.CUSTOMER and kind == "customer" else None

    @property
    def client_id(self) -> str | None:
        kind, _, rest = self.subject.partition(":")
        return rest if kind == "client" else None

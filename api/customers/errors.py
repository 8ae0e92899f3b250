"""Typed customer-platform errors with stable codes (the API maps them to HTTP statuses)."""

from __future__ import annotations


class CustomerError(ValueError):
    code = "customer_error"


class CustomerNotFoundError(CustomerError):
    code = "customer_not_found"

    def __init__(self, customer_id: object) -> None:
        super().__init__(f"customer {customer_id} not found")
        self.customer_id = customer_id


class EmailTakenError(CustomerError):
    code = "email_taken"

    def __init__(self) -> None:
        # The address is not repeated: error texts end up in logs.
        super().__init__("another customer already uses this e-mail address")


class OwnershipError(CustomerError):
    code = "ownership_conflict"

    def __init__(self, message: str, *, vin: str) -> None:
        super().__init__(message)
        self.vin = vin


class NoOwnerError(CustomerError):
    code = "vehicle_has_no_owner"

    def __init__(self, vin: str) -> None:
        super().__init__(f"vehicle {vin} is not linked to a customer")
        self.vin = vin

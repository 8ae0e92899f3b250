"""Typed entitlement errors with a stable ``code`` (the API keeps it and picks the status)."""

from __future__ import annotations

from ota.errors import OtaError


class EntitlementError(OtaError):
    code = "entitlement_error"


class EntitlementNotFoundError(EntitlementError):
    code = "entitlement_not_found"

    def __init__(self, message: str, *, vin: str, entitlement_id: int) -> None:
        super().__init__(message)
        self.vin = vin
        self.entitlement_id = entitlement_id


class EntitlementInvalidError(EntitlementError):
    """A grant that breaks a rule (window, subscription of another vehicle...)."""

    code = "entitlement_invalid"

    def __init__(self, message: str, *, field: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class TooManyEntitlementsError(EntitlementError):
    """One document carries at most ``protocol.entitlements.MAX_FEATURES`` features."""

    code = "too_many_entitlements"

    def __init__(self, message: str, *, vin: str, limit: int) -> None:
        super().__init__(message)
        self.vin = vin
        self.limit = limit


class EntitlementKeyMissingError(EntitlementError):
    """No entitlement signing key in the OTA key directory."""

    code = "entitlement_key_missing"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class EntitlementPushError(EntitlementError):
    """The broker did not take the command (connection refused, no PUBACK in time)."""

    code = "entitlement_push_failed"


class EntitlementVehicleNotFoundError(EntitlementError):
    code = "vehicle_not_found"

    def __init__(self, message: str, *, vin: str) -> None:
        super().__init__(message)
        self.vin = vin

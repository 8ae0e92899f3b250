"""Typed service-network errors with stable codes.

They are :class:`api.errors.ApiError` subclasses, so the API renders them as
``{"code", "message"}`` with the status each class names; the stores raise them directly.
"""

from __future__ import annotations

from api.errors import ApiError


class ServiceError(ApiError):
    code = "service_error"


class CentreNotFoundError(ServiceError):
    status_code = 404
    code = "centre_not_found"

    def __init__(self, centre_id: str) -> None:
        super().__init__(f"service centre {centre_id} not found")
        self.centre_id = centre_id


class VanNotFoundError(ServiceError):
    status_code = 404
    code = "van_not_found"

    def __init__(self, van_id: str) -> None:
        super().__init__(f"service van {van_id} not found")
        self.van_id = van_id


class AlreadyExistsError(ServiceError):
    status_code = 409
    code = "already_exists"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key} already exists")
        self.kind = kind
        self.key = key


class BookingNotFoundError(ServiceError):
    status_code = 404
    code = "booking_not_found"

    def __init__(self, booking_id: int) -> None:
        super().__init__(f"booking {booking_id} not found")
        self.booking_id = booking_id


class WorkOrderNotFoundError(ServiceError):
    status_code = 404
    code = "work_order_not_found"

    def __init__(self, work_order_id: int) -> None:
        super().__init__(f"work order {work_order_id} not found")
        self.work_order_id = work_order_id


class RecallNotFoundError(ServiceError):
    status_code = 404
    code = "recall_not_found"

    def __init__(self, recall_code: str) -> None:
        super().__init__(f"recall campaign {recall_code} not found")
        self.recall_code = recall_code


class WarrantyTermsNotFoundError(ServiceError):
    status_code = 404
    code = "warranty_terms_not_found"

    def __init__(self, brand: str) -> None:
        super().__init__(f"no warranty terms for brand {brand}")
        self.brand = brand


class InvalidTransitionError(ServiceError):
    """The booking's status does not allow this step (e.g. check-in of a cancelled booking)."""

    status_code = 409
    code = "invalid_transition"

    def __init__(self, booking_id: int | None, status: str, action: str) -> None:
        super().__init__(f"booking {booking_id} is {status}: cannot {action}")
        self.booking_id = booking_id
        self.status = status
        self.action = action


class TransitionForbiddenError(ServiceError):
    """The caller sees the booking, but their role may not take this step."""

    status_code = 403
    code = "transition_forbidden"

    def __init__(self, role: str, action: str) -> None:
        super().__init__(f"a {role} may not {action} a booking")
        self.role = role
        self.action = action


class NotASlotError(ServiceError):
    """The requested start is not one of the provider's bookable slots."""

    status_code = 422
    code = "not_a_slot"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SlotFullError(ServiceError):
    status_code = 409
    code = "slot_full"

    def __init__(self, provider: str) -> None:
        super().__init__(f"that slot at {provider} is fully booked")
        self.provider = provider


class VehicleAlreadyBookedError(ServiceError):
    status_code = 409
    code = "vehicle_already_booked"

    def __init__(self, vin: str) -> None:
        super().__init__(f"vehicle {vin} already has a booking at that time")
        self.vin = vin


class SkillMissingError(ServiceError):
    status_code = 422
    code = "skill_missing"

    def __init__(self, provider: str, missing: list[str]) -> None:
        super().__init__(f"{provider} does not offer {', '.join(missing)}")
        self.provider = provider
        self.missing = missing


class PositionUnknownError(ServiceError):
    """No coordinates given and no usable last known position of the vehicle."""

    status_code = 409
    code = "position_unknown"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class MobileServiceNotEligibleError(ServiceError):
    status_code = 422
    code = "mobile_service_not_eligible"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class AlertMismatchError(ServiceError):
    """An alert id that does not name an alert of this vehicle."""

    status_code = 422
    code = "alert_not_for_vehicle"

    def __init__(self, alert_ids: list[int], vin: str) -> None:
        names = ", ".join(str(a) for a in alert_ids)
        super().__init__(f"alert(s) {names} are not alerts of vehicle {vin}")
        self.alert_ids = alert_ids
        self.vin = vin


class WorkOrderStateError(ServiceError):
    """The work order (or its booking) is not in a state that allows this."""

    status_code = 409
    code = "work_order_conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CoverageError(ServiceError):
    """A line claims warranty or recall coverage the checks do not support."""

    status_code = 409
    code = "coverage_not_applicable"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class AlertAlreadyBookedError(ServiceError):
    status_code = 409
    code = "alert_already_booked"

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} already has an open booking")
        self.alert_id = alert_id


class InvalidRangeError(ServiceError):
    status_code = 422
    code = "invalid_range"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class WorkOrderLineNotFoundError(ServiceError):
    status_code = 404
    code = "work_order_line_not_found"

    def __init__(self, work_order_id: int, line_id: int) -> None:
        super().__init__(f"work order {work_order_id} has no line {line_id}")
        self.work_order_id = work_order_id
        self.line_id = line_id

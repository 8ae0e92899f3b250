"""What the owner is told to do about a trend finding: one sentence per alert type."""

from __future__ import annotations

from diagnostics.findings import AlertType

WHEEL_NAMES = {
    "Row1.Left": "front left",
    "Row1.Right": "front right",
    "Row2.Left": "rear left",
    "Row2.Right": "rear right",
}


def _when(days_left: float | None) -> str:
    if days_left is None or days_left <= 0.0:
        return "has reached its limit"
    if days_left < 1.5:
        return "will reach its limit within a day"
    return f"will reach its limit in about {round(days_left)} days"


def recommended_action(alert_type: AlertType, component: str, days_left: float | None) -> str:
    wheel = WHEEL_NAMES.get(component, component)
    when = _when(days_left)
    if alert_type is AlertType.TIRE_SLOW_LEAK:
        return (
            f"The {wheel} tyre is slowly losing pressure and {when}: have it checked for a "
            "puncture or a leaking valve and reinflate it to the placard pressure."
        )
    if alert_type is AlertType.LOW_VOLTAGE_BATTERY_DEGRADATION:
        return (
            f"The 12 V battery is losing its charge and {when}: have it tested and replaced "
            "before the car fails to start."
        )
    if alert_type is AlertType.BRAKE_PAD_WEAR:
        return (
            f"The {wheel} brake pad is wearing unusually fast and {when}: book a brake "
            "inspection (a sticking caliper is the usual cause) and have the pads replaced."
        )
    if alert_type is AlertType.COOLANT_OVERHEATING:
        return (
            f"The engine runs hotter every day and {when}: have the thermostat, coolant pump "
            "and coolant level checked before the engine overheats."
        )
    if alert_type is AlertType.TRACTION_BATTERY_DEGRADATION:
        return (
            f"The high-voltage battery is losing capacity unusually fast and {when}: book a "
            "battery health check (warranty)."
        )
    return f"The {alert_type.value.replace('_', ' ')} trend {when}: book a workshop visit."

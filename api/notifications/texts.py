"""Notification texts in the customer's language (English and German), and the formatting of
what goes into them: dates in the customer's time zone, alert and component names.

A language missing a text falls back to English, so a template added in English alone still
works for every customer. Texts are ``str.format`` templates over named values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES = frozenset({"en", "de"})

_TEXTS: dict[str, dict[str, str]] = {
    # Alerts
    "alert.opened.title": {"en": "{what}", "de": "{what}"},
    "alert.opened.title.critical": {"en": "Urgent: {what}", "de": "Dringend: {what}"},
    "alert.updated.title": {"en": "More urgent now: {what}", "de": "Jetzt dringender: {what}"},
    "alert.resolved.title": {"en": "Resolved: {what}", "de": "Erledigt: {what}"},
    "alert.advice.critical": {
        "en": "Stop safely and contact a workshop.",
        "de": "Bitte halten Sie sicher an und wenden Sie sich an eine Werkstatt.",
    },
    "alert.advice.warning": {
        "en": "Please book a workshop visit soon.",
        "de": "Bitte vereinbaren Sie bald einen Werkstatttermin.",
    },
    "alert.advice.info": {
        "en": "Have it looked at during your next service.",
        "de": "Bitte beim nächsten Service prüfen lassen.",
    },
    "alert.prediction": {
        "en": "Expected to need attention by {when}.",
        "de": "Voraussichtlich handlungsbedürftig bis {when}.",
    },
    "alert.resolution.evidence_cleared": {
        "en": "The readings are back to normal; nothing to do.",
        "de": "Die Messwerte sind wieder normal; Sie müssen nichts tun.",
    },
    "alert.resolution.work_order": {
        "en": "Fixed at the workshop.",
        "de": "In der Werkstatt behoben.",
    },
    "alert.resolution.manual": {
        "en": "Closed by the service team.",
        "de": "Vom Service-Team geschlossen.",
    },
    # Bookings and work orders
    "booking.centre.unknown": {"en": "your service centre", "de": "Ihrer Werkstatt"},
    "booking.suggested.title": {
        "en": "Service appointment suggested",
        "de": "Werkstatttermin vorgeschlagen",
    },
    "booking.suggested.body": {
        "en": "Suggested: {start} at {centre}. Confirm the appointment in the app.",
        "de": "Vorschlag: {start} bei {centre}. Bestätigen Sie den Termin in der App.",
    },
    "booking.confirmed.title": {
        "en": "Service appointment confirmed",
        "de": "Werkstatttermin bestätigt",
    },
    "booking.confirmed.body": {
        "en": "Your appointment on {start} at {centre} is confirmed.",
        "de": "Ihr Termin am {start} bei {centre} ist bestätigt.",
    },
    "booking.checked_in.title": {"en": "Vehicle checked in", "de": "Fahrzeug angenommen"},
    "booking.checked_in.body": {
        "en": "Your vehicle is checked in at {centre}. We will tell you when it is ready.",
        "de": "Ihr Fahrzeug wurde bei {centre} angenommen. Wir melden uns, sobald es fertig ist.",
    },
    "booking.completed.title": {"en": "Service completed", "de": "Service abgeschlossen"},
    "booking.completed.body": {
        "en": "The work at {centre} is done: your vehicle is ready.",
        "de": "Die Arbeiten bei {centre} sind abgeschlossen: Ihr Fahrzeug ist fertig.",
    },
    "booking.cancelled.title": {
        "en": "Service appointment cancelled",
        "de": "Werkstatttermin storniert",
    },
    "booking.cancelled.body": {
        "en": "Your appointment on {start} at {centre} was cancelled.",
        "de": "Ihr Termin am {start} bei {centre} wurde storniert.",
    },
    "booking.no_show.title": {
        "en": "Missed service appointment",
        "de": "Werkstatttermin verpasst",
    },
    "booking.no_show.body": {
        "en": "We missed you on {start} at {centre}. Book a new appointment in the app.",
        "de": "Ihr Termin am {start} bei {centre} wurde nicht wahrgenommen. "
        "Buchen Sie in der App einen neuen Termin.",
    },
    "work_order.closed.title": {"en": "Work order closed", "de": "Werkstattauftrag abgeschlossen"},
    "work_order.closed.body": {
        "en": "The workshop has closed work order {number} for your vehicle.",
        "de": "Die Werkstatt hat den Auftrag {number} für Ihr Fahrzeug abgeschlossen.",
    },
    # Software updates (OTA). Purpose and functions are the campaign's own words.
    "ota.offer.title.consent": {
        "en": "Software update ready for your approval",
        "de": "Software-Update wartet auf Ihre Zustimmung",
    },
    "ota.offer.title.auto": {"en": "Software update starting", "de": "Software-Update beginnt"},
    "ota.offer.duration": {
        "en": "Installing version {version} takes about {minutes} min.",
        "de": "Die Installation der Version {version} dauert etwa {minutes} Min.",
    },
    "ota.offer.unavailable": {
        "en": "Not available meanwhile: {functions}.",
        "de": "Währenddessen nicht verfügbar: {functions}.",
    },
    "ota.offer.ask": {
        "en": "Accept or decline the update in the app.",
        "de": "Nehmen Sie das Update in der App an oder lehnen Sie es ab.",
    },
    "ota.offer.auto": {
        "en": "It installs automatically, as you chose in your settings.",
        "de": "Es wird automatisch installiert, wie in Ihren Einstellungen gewählt.",
    },
    # Offers (issue 10). Place, partner, model and feature names are shown as written.
    "offer.low_energy.title": {
        "en": "{discount} at {place}",
        "de": "{discount} bei {place}",
    },
    "offer.low_energy.body.fuel": {
        "en": "Running low? {place} is {km} km ahead. Show code {code} to get {discount}"
        " (valid until {until}).",
        "de": "Tank fast leer? {place} liegt {km} km voraus. Mit dem Code {code} erhalten Sie"
        " {discount} (gültig bis {until}).",
    },
    "offer.low_energy.body.charge": {
        "en": "Battery getting low? {place} is {km} km ahead. Code {code}: {discount}"
        " (valid until {until}).",
        "de": "Akku fast leer? {place} liegt {km} km voraus. Code {code}: {discount}"
        " (gültig bis {until}).",
    },
    "offer.service.title": {"en": "Service slot near you", "de": "Werkstatttermin in Ihrer Nähe"},
    "offer.service.body": {
        "en": "Your vehicle is due for service. {centre} has a free slot on {when}; book it in"
        " the app.",
        "de": "Ihr Fahrzeug ist wartungsfällig. {centre} hat am {when} einen freien Termin;"
        " buchen Sie ihn in der App.",
    },
    "offer.renewal.title": {"en": "Renew before it runs out", "de": "Rechtzeitig verlängern"},
    "offer.renewal.body": {
        "en": "Your {contract} ends on {when}. Renew with code {code}.",
        "de": "Ihr(e) {contract} endet am {when}. Verlängern Sie mit dem Code {code}.",
    },
    "offer.test_drive.title": {"en": "Test drive the {model}", "de": "Probefahrt im {model}"},
    "offer.test_drive.body": {
        "en": "You drive about {km} km a day: the {model} does that on one charge. Book a test"
        " drive at {dealer} with code {code}.",
        "de": "Sie fahren etwa {km} km am Tag: Das schafft der {model} mit einer Ladung. Buchen"
        " Sie eine Probefahrt bei {dealer} mit dem Code {code}.",
    },
    "offer.trial.title": {
        "en": "Try {feature} free for {days} days",
        "de": "{feature} {days} Tage kostenlos testen",
    },
    "offer.trial.body": {
        "en": "Cold days ahead. Activate your free {feature} trial with code {code}.",
        "de": "Es wird kalt. Aktivieren Sie Ihren kostenlosen Test von {feature} mit dem Code"
        " {code}.",
    },
    "ota.update_result.installed.title": {
        "en": "Software update installed",
        "de": "Software-Update installiert",
    },
    "ota.update_result.installed.body": {
        "en": "Your vehicle now runs version {version}.",
        "de": "Ihr Fahrzeug nutzt jetzt die Version {version}.",
    },
    "ota.update_result.failed.title": {
        "en": "Software update not installed",
        "de": "Software-Update nicht installiert",
    },
    "ota.update_result.failed.body": {
        "en": "The update to version {version} could not be completed. "
        "Your vehicle keeps its previous software and works as before.",
        "de": "Das Update auf Version {version} konnte nicht abgeschlossen werden. "
        "Ihr Fahrzeug behält seine bisherige Software und funktioniert wie gewohnt.",
    },
    "ota.update_result.rolled_back.body": {
        "en": "The update to version {version} could not be installed, so your vehicle "
        "returned to its previous software. It works as before.",
        "de": "Das Update auf Version {version} ließ sich nicht installieren; Ihr Fahrzeug "
        "ist zu seiner bisherigen Software zurückgekehrt und funktioniert wie gewohnt.",
    },
    # E-mail footer
    "email.footer": {
        "en": "You receive this e-mail because e-mail is one of your notification channels. "
        "Change your channels and quiet hours in the FleetLink app.",
        "de": "Sie erhalten diese E-Mail, weil E-Mail einer Ihrer Benachrichtigungskanäle ist. "
        "Kanäle und Ruhezeiten ändern Sie in der FleetLink-App.",
    },
    "email.vehicle": {"en": "Vehicle: {vin}", "de": "Fahrzeug: {vin}"},
}

_ALERT_NAMES: dict[str, dict[str, str]] = {
    "tire_slow_leak": {"en": "Slow tyre leak", "de": "Schleichender Druckverlust im Reifen"},
    "tire_pressure_loss": {"en": "Tyre pressure loss", "de": "Reifendruckverlust"},
    "low_voltage_battery_degradation": {
        "en": "12 V battery weakening",
        "de": "12-V-Batterie lässt nach",
    },
    "brake_pad_wear": {"en": "Brake pads wearing out", "de": "Bremsbeläge verschlissen"},
    "coolant_overheating": {"en": "Engine running hot", "de": "Motor überhitzt"},
    "traction_battery_degradation": {
        "en": "High-voltage battery degrading",
        "de": "Hochvoltbatterie altert",
    },
    "service_due": {"en": "Service due", "de": "Service fällig"},
    "dtc": {"en": "Fault code {component}", "de": "Fehlercode {component}"},
}

# VSS wheel positions (Row1 = front axle) as words.
_AXLES = {"Row1": {"en": "front", "de": "vorne"}, "Row2": {"en": "rear", "de": "hinten"}}
_SIDES = {"Left": {"en": "left", "de": "links"}, "Right": {"en": "right", "de": "rechts"}}

_WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "de": ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."),
}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def resolve_language(tag: str) -> str:
    """The supported language for a BCP 47 tag (``de-AT`` -> ``de``); English otherwise."""
    primary = tag.split("-", 1)[0].lower()
    return primary if primary in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def _pick(table: Mapping[str, str], language: str) -> str:
    return table.get(language) or table[DEFAULT_LANGUAGE]


def text(key: str, language: str, **values: object) -> str:
    return _pick(_TEXTS[key], language).format(**values)


def format_when(moment: datetime, zone: ZoneInfo, language: str) -> str:
    """``Tue 24 Nov 2026, 09:00 CET`` / ``Di. 24.11.2026, 09:00 CET`` in the customer's zone."""
    local = moment.astimezone(zone)
    weekday = _WEEKDAYS.get(language, _WEEKDAYS["en"])[local.weekday()]
    zone_name = local.tzname() or ""
    if language == "de":
        day = f"{local.day:02d}.{local.month:02d}.{local.year}"
    else:
        day = f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}"
    return f"{weekday} {day}, {local.hour:02d}:{local.minute:02d} {zone_name}".rstrip()


def component_name(component: str, language: str) -> str:
    """``Row1.Left`` -> ``front left``; anything else as it is."""
    axle, _, side = component.partition(".")
    if axle in _AXLES and side in _SIDES:
        return f"{_pick(_AXLES[axle], language)} {_pick(_SIDES[side], language)}"
    return component


def alert_name(alert_type: str, component: str, language: str) -> str:
    """What the alert is about, in words: ``Brake pads wearing out (front left)``."""
    known = _ALERT_NAMES.get(alert_type)
    if known is not None:
        name = _pick(known, language)
        if "{component}" in name:
            return name.format(component=component)
    else:
        name = alert_type.replace("_", " ").capitalize()
    where = component_name(component, language)
    return f"{name} ({where})" if where else name

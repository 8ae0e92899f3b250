"""The pure decision cores: quiet hours in the customer's time zone, channel choice, texts,
backoff. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.notifications.delivery import retry_delay
from api.notifications.model import Category, Channel, DeliveryState, Reason
from api.notifications.quiet_hours import QuietHours, quiet_until
from api.notifications.routing import DeliveryPlan, Preferences, plan_deliveries
from api.notifications.templates import Draft
from api.notifications.texts import alert_name, format_when, resolve_language

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = QuietHours(time(22, 0), time(7, 0), BERLIN)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # 23:30 Berlin (CET, UTC+1) in November: quiet until 07:00 Berlin the next day.
        (utc(2026, 11, 23, 22, 30), utc(2026, 11, 24, 6, 0)),
        # 03:00 Berlin: after midnight, the same night's end.
        (utc(2026, 11, 24, 2, 0), utc(2026, 11, 24, 6, 0)),
        # 22:00 Berlin sharp: the window has begun.
        (utc(2026, 11, 23, 21, 0), utc(2026, 11, 24, 6, 0)),
        # 07:00 Berlin sharp: it is over.
        (utc(2026, 11, 24, 6, 0), None),
        # 21:59 Berlin (20:59 UTC): not yet.
        (utc(2026, 11, 23, 20, 59), None),
        # Noon.
        (utc(2026, 11, 24, 11, 0), None),
        # In summer Berlin is UTC+2: 23:30 CEST ends at 05:00 UTC.
        (utc(2026, 7, 1, 21, 30), utc(2026, 7, 2, 5, 0)),
    ],
)
def test_a_window_spanning_midnight_in_the_customers_zone(
    now: datetime, until: datetime | None
) -> None:
    assert quiet_until(NIGHT, now) == until


def test_a_window_within_one_day() -> None:
    siesta = QuietHours(time(13, 0), time(15, 0), NEW_YORK)
    # 13:30 in New York (EST, UTC-5) = 18:30 UTC; it ends at 15:00 New York = 20:00 UTC.
    assert quiet_until(siesta, utc(2026, 1, 5, 18, 30)) == utc(2026, 1, 5, 20, 0)
    assert quiet_until(siesta, utc(2026, 1, 5, 17, 59)) is None
    assert quiet_until(siesta, utc(2026, 1, 5, 20, 0)) is None


def test_no_window_and_an_empty_window_are_never_quiet() -> None:
    assert quiet_until(None, utc(2026, 1, 5, 3, 0)) is None
    empty = QuietHours(time(7, 0), time(7, 0), BERLIN)
    assert quiet_until(empty, utc(2026, 1, 5, 6, 0)) is None


def test_an_end_inside_the_spring_forward_gap_is_late_never_early() -> None:
    # Berlin skips 02:00-03:00 on 29 March 2026. A window ending at 02:30 ends at 03:30 CEST.
    gap = QuietHours(time(22, 0), time(2, 30), BERLIN)
    until = quiet_until(gap, utc(2026, 3, 28, 23, 0))
    assert until == utc(2026, 3, 29, 1, 30)
    assert until is not None and until.astimezone(BERLIN).hour == 3


def prefs(*channels: Channel, quiet: QuietHours | None = None, phone: bool = True) -> Preferences:
    return Preferences(
        channels=frozenset(channels),
        email="ada@example.com",
        phone="+4915112345678" if phone else None,
        quiet_hours=quiet,
    )


def by_channel(plans: list[DeliveryPlan]) -> dict[Channel, DeliveryPlan]:
    return {p.channel: p for p in plans}


NOON = utc(2026, 11, 24, 11, 0)
MIDNIGHT_BERLIN = utc(2026, 11, 23, 23, 0)  # 00:00 in Berlin


def test_preferred_channels_are_queued_the_others_suppressed_the_app_always_sent() -> None:
    plans = by_channel(
        plan_deliveries(prefs(Channel.EMAIL), Category.INFORMATIONAL, has_vehicle=True, now=NOON)
    )
    app, email, in_car, sms = (plans[c] for c in Channel)
    assert (app.state, app.reason) == (DeliveryState.SENT, None)
    assert (email.state, email.due_at) == (DeliveryState.QUEUED, NOON)
    for plan in (in_car, sms):
        assert plan.state is DeliveryState.SUPPRESSED
        assert plan.reason is Reason.CHANNEL_NOT_PREFERRED


def test_missing_address_or_car_is_a_visible_reason() -> None:
    plans = by_channel(
        plan_deliveries(
            prefs(Channel.SMS, Channel.IN_CAR, phone=False),
            Category.INFORMATIONAL,
            has_vehicle=False,
            now=NOON,
        )
    )
    assert plans[Channel.SMS].reason is Reason.NO_ADDRESS
    assert plans[Channel.IN_CAR].reason is Reason.NO_VEHICLE


@pytest.mark.parametrize("category", [Category.INFORMATIONAL, Category.PROMOTION])
def test_quiet_hours_defer_intrusive_channels_to_the_end_of_the_window(
    category: Category,
) -> None:
    plans = by_channel(
        plan_deliveries(
            prefs(Channel.EMAIL, Channel.IN_CAR, Channel.SMS, quiet=NIGHT),
            category,
            has_vehicle=True,
            now=MIDNIGHT_BERLIN,
        )
    )
    assert plans[Channel.APP].state is DeliveryState.SENT
    for channel in (Channel.EMAIL, Channel.IN_CAR, Channel.SMS):
        plan = plans[channel]
        assert plan.state is DeliveryState.QUEUED
        assert plan.reason is Reason.QUIET_HOURS
        assert plan.due_at == utc(2026, 11, 24, 6, 0)


def test_service_critical_is_never_held_back_by_quiet_hours() -> None:
    plans = by_channel(
        plan_deliveries(
            prefs(Channel.IN_CAR, Channel.EMAIL, quiet=NIGHT),
            Category.SERVICE_CRITICAL,
            has_vehicle=True,
            now=MIDNIGHT_BERLIN,
        )
    )
    for channel in (Channel.IN_CAR, Channel.EMAIL):
        plan = plans[channel]
        assert (plan.state, plan.reason, plan.due_at) == (
            DeliveryState.QUEUED,
            None,
            MIDNIGHT_BERLIN,
        )


def test_languages_resolve_to_the_supported_ones() -> None:
    assert resolve_language("de-AT") == "de"
    assert resolve_language("de") == "de"
    assert resolve_language("fr-FR") == "en"
    assert resolve_language("en-GB") == "en"


def test_dates_are_written_in_the_customers_zone_and_language() -> None:
    moment = utc(2026, 11, 24, 8, 0)
    assert format_when(moment, BERLIN, "en") == "Tue 24 Nov 2026, 09:00 CET"
    assert format_when(moment, BERLIN, "de") == "Di. 24.11.2026, 09:00 CET"
    assert format_when(moment, NEW_YORK, "en") == "Tue 24 Nov 2026, 03:00 EST"


def test_alert_names_say_what_and_where() -> None:
    assert alert_name("brake_pad_wear", "Row1.Left", "en") == "Brake pads wearing out (front left)"
    assert (
        alert_name("brake_pad_wear", "Row2.Right", "de")
        == "Bremsbeläge verschlissen (hinten rechts)"
    )
    assert alert_name("dtc", "P0301", "de") == "Fehlercode P0301"
    assert alert_name("new_kind_of_fault", "", "en") == "New kind of fault"


def test_long_texts_are_clipped_to_what_the_table_takes() -> None:
    draft = Draft(Category.INFORMATIONAL, "t" * 500, "b" * 5000)
    assert len(draft.title) == 200 and draft.title.endswith("…")
    assert len(draft.body) == 2000


def test_backoff_doubles_and_is_capped() -> None:
    delays = [retry_delay(n, base_s=30, max_s=300) for n in range(1, 7)]
    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240, 300, 300)]

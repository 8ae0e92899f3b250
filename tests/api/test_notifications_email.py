"""E-mail delivery through a real SMTP server (aiosmtpd on a free loopback port): the message
arrives with the right subject and recipient; refusals are retried with backoff, then failed;
channels without a provider are suppressed visibly; quiet hours hold mail until morning."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from api.notifications.delivery import DeliveryLoop, adapters_from
from api.notifications.settings import NotifySettings
from fleetlink.embedded_postgres import free_port
from tests.api.customer_platform import VIN_A, FakeClock, Platform, running_platform
from tests.api.test_notifications_helpers import (
    Owner,
    alert_payload,
    consumer,
    deliveries_of,
    emit,
    later,
    notifications_of,
    owner,
)

pytestmark = pytest.mark.integration


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what it accepts; answers ``reply`` instead when set."""

    reply: str | None = None
    attempts: int = 0
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.reply is not None:
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@dataclass
class SmtpServer:
    mailbox: Mailbox
    port: int


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(mailbox, port)
    finally:
        controller.stop()


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


def settings_for(port: int, **changes: Any) -> NotifySettings:
    return NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="FleetLink <notify@fleetlink.test>",
        smtp_timeout_s=5,
        retry_base_s=60,
        max_attempts=3,
        **changes,
    )


def loop_for(platform: Platform, settings: NotifySettings, clock: FakeClock) -> DeliveryLoop:
    return DeliveryLoop(
        platform.pool, adapters_from(settings, mqtt=None), settings=settings, clock=clock
    )


async def alert_for(platform: Platform, ada: Owner, clock: FakeClock | None = None) -> int:
    outbox, _ = consumer(platform.pool, clock or platform.clock)
    await emit(
        platform.pool,
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A),
        occurred_at=later(platform.clock),
    )
    await outbox.process_pending()
    [notification] = await notifications_of(platform.pool, ada.id)
    notification_id: int = notification["id"]
    return notification_id


async def test_the_email_arrives_for_the_customer(platform: Platform, smtp: SmtpServer) -> None:
    ada = await owner(
        platform,
        "ada@example.com",
        VIN_A,
        preferred_channels=["email", "sms", "in_car"],
        phone="+4915112345678",
    )
    notification = await alert_for(platform, ada)
    loop = loop_for(platform, settings_for(smtp.port), platform.clock)
    assert await loop.deliver_due() == 3  # email, sms, in_car

    [(sender, recipients, message)] = smtp.mailbox.received
    assert sender == "notify@fleetlink.test"
    assert recipients == ["ada@example.com"]
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Brake pads wearing out (front left)"
    assert message["Auto-Submitted"] == "auto-generated"
    content = message.get_content()
    assert "Replace the front brake pads within two weeks." in content
    assert f"Vehicle: {VIN_A}" in content

    deliveries = await deliveries_of(platform.pool, notification)
    assert (deliveries["email"]["state"], deliveries["email"]["attempts"]) == ("sent", 1)
    assert deliveries["email"]["sent_at"] == platform.clock.now()
    # No SMS provider and (here) no broker: suppressed, with the reason, not silently dropped.
    assert (deliveries["sms"]["state"], deliveries["sms"]["reason"]) == (
        "suppressed",
        "no_sms_provider",
    )
    assert (deliveries["in_car"]["state"], deliveries["in_car"]["reason"]) == (
        "suppressed",
        "no_in_car_provider",
    )
    assert await loop.deliver_due() == 0  # nothing is sent twice


async def test_a_temporary_refusal_is_retried_with_backoff_then_failed(
    platform: Platform, smtp: SmtpServer
) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, preferred_channels=["email"])
    notification = await alert_for(platform, ada)
    smtp.mailbox.reply = "451 4.3.0 Try again later"
    loop = loop_for(platform, settings_for(smtp.port), platform.clock)

    assert await loop.deliver_due() == 1
    first = (await deliveries_of(platform.pool, notification))["email"]
    assert (first["state"], first["attempts"]) == ("queued", 1)
    assert first["next_attempt_at"] == platform.clock.now() + timedelta(seconds=60)
    assert first["last_error"].startswith("smtp_rejected: SMTP 451")
    assert await loop.deliver_due() == 0  # not due yet

    platform.clock.advance(timedelta(seconds=60))
    assert await loop.deliver_due() == 1
    second = (await deliveries_of(platform.pool, notification))["email"]
    assert (second["state"], second["attempts"]) == ("queued", 2)
    assert second["next_attempt_at"] == platform.clock.now() + timedelta(seconds=120)

    platform.clock.advance(timedelta(seconds=120))
    assert await loop.deliver_due() == 1
    last = (await deliveries_of(platform.pool, notification))["email"]
    assert (last["state"], last["reason"], last["attempts"]) == ("failed", "retries_exhausted", 3)
    assert last["failed_at"] == platform.clock.now()
    assert last["next_attempt_at"] is None
    assert smtp.mailbox.attempts == 3
    assert (loop.stats.retried, loop.stats.failed) == (2, 1)


async def test_a_permanent_refusal_fails_at_once(platform: Platform, smtp: SmtpServer) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, preferred_channels=["email"])
    notification = await alert_for(platform, ada)
    smtp.mailbox.reply = "550 5.1.1 No such mailbox"
    await loop_for(platform, settings_for(smtp.port), platform.clock).deliver_due()
    failed = (await deliveries_of(platform.pool, notification))["email"]
    assert (failed["state"], failed["reason"], failed["attempts"]) == ("failed", "rejected", 1)
    assert smtp.mailbox.attempts == 1


async def test_an_unreachable_server_is_retried(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, preferred_channels=["email"])
    notification = await alert_for(platform, ada)
    await loop_for(platform, settings_for(free_port()), platform.clock).deliver_due()
    waiting = (await deliveries_of(platform.pool, notification))["email"]
    assert (waiting["state"], waiting["attempts"]) == ("queued", 1)
    assert waiting["last_error"].startswith("smtp_unavailable")


async def test_without_an_smtp_host_email_is_suppressed(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, preferred_channels=["email"])
    notification = await alert_for(platform, ada)
    settings = NotifySettings(smtp_host="")
    await loop_for(platform, settings, platform.clock).deliver_due()
    email_delivery = (await deliveries_of(platform.pool, notification))["email"]
    assert (email_delivery["state"], email_delivery["reason"]) == (
        "suppressed",
        "no_email_provider",
    )


async def test_quiet_hours_hold_the_mail_until_morning(
    platform: Platform, smtp: SmtpServer
) -> None:
    ada = await owner(
        platform,
        "ada@example.com",
        VIN_A,
        preferred_channels=["email", "app"],
        timezone="Europe/Berlin",
        quiet_hours={"start": "22:00", "end": "07:00"},
    )
    # 23:30 in Berlin: the notification is made at night.
    night = FakeClock(int(datetime(2026, 11, 23, 22, 30, tzinfo=UTC).timestamp() * 1000))
    notification = await alert_for(platform, ada, night)
    loop = loop_for(platform, settings_for(smtp.port), night)
    assert await loop.deliver_due() == 0
    assert smtp.mailbox.received == []
    night.advance(timedelta(hours=7, minutes=29))  # 06:59 in Berlin
    assert await loop.deliver_due() == 0
    night.advance(timedelta(minutes=1))  # 07:00
    assert await loop.deliver_due() == 1
    assert len(smtp.mailbox.received) == 1
    sent = (await deliveries_of(platform.pool, notification))["email"]
    assert sent["state"] == "sent"
    assert sent["sent_at"] == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


async def test_a_channel_dropped_while_waiting_is_not_used(
    platform: Platform, smtp: SmtpServer
) -> None:
    ada = await owner(
        platform,
        "ada@example.com",
        VIN_A,
        preferred_channels=["email", "app"],
        quiet_hours={"start": "22:00", "end": "07:00"},
    )
    night = FakeClock(int(datetime(2026, 11, 23, 23, 0, tzinfo=UTC).timestamp() * 1000))
    notification = await alert_for(platform, ada, night)
    changed = await platform.http.patch(
        "/v1/me", json={"preferred_channels": ["app"]}, headers=ada.headers
    )
    assert changed.status_code == 200
    night.advance(timedelta(hours=8))
    await loop_for(platform, settings_for(smtp.port), night).deliver_due()
    dropped = (await deliveries_of(platform.pool, notification))["email"]
    assert (dropped["state"], dropped["reason"]) == ("suppressed", "channel_not_preferred")
    assert smtp.mailbox.received == []

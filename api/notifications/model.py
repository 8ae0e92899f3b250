"""The vocabulary of notifications: categories, channels, delivery states and reasons."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """How a notification may be held back. Quiet hours never delay ``service_critical``
    (safety: a critical alert reaches the car at once); ``informational`` and ``promotion``
    wait for the end of the quiet period on intrusive channels."""

    SERVICE_CRITICAL = "service_critical"
    INFORMATIONAL = "informational"
    PROMOTION = "promotion"


class Channel(StrEnum):
    APP = "app"
    EMAIL = "email"
    IN_CAR = "in_car"
    SMS = "sms"


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class Reason(StrEnum):
    """Why a delivery is suppressed, failed, or (queued) still waits."""

    QUIET_HOURS = "quiet_hours"  # queued until the end of the quiet period
    CHANNEL_NOT_PREFERRED = "channel_not_preferred"
    NO_ADDRESS = "no_address"  # no e-mail address or phone number on the profile
    NO_VEHICLE = "no_vehicle"  # in-car delivery of a notification about no car
    RETRIES_EXHAUSTED = "retries_exhausted"
    REJECTED = "rejected"  # the provider refused it for good (e.g. SMTP 5xx)


def no_provider(channel: Channel) -> str:
    """The reason for a channel this deployment has no adapter for: ``no_sms_provider``."""
    return f"no_{channel.value}_provider"


#: Channels whose delivery the notifier plans (every notification gets one row per channel).
ALL_CHANNELS: tuple[Channel, ...] = (Channel.APP, Channel.EMAIL, Channel.IN_CAR, Channel.SMS)

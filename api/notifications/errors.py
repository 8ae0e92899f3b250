"""Typed notification errors with stable codes. Foreign exceptions (smtplib, aiomqtt) are
translated once, in the adapters."""

from __future__ import annotations


class NotificationError(Exception):
    code = "notification_error"


class NotificationNotFoundError(NotificationError):
    """Unknown, or another customer's (the API answers 404 either way)."""

    code = "notification_not_found"

    def __init__(self, notification_id: int) -> None:
        super().__init__(f"notification {notification_id} not found")
        self.notification_id = notification_id


class BadPayloadError(NotificationError):
    """An outbox event whose payload a template cannot read; the outbox consumer records it in
    ``outbox_failures`` and moves on."""

    code = "bad_event_payload"

    def __init__(self, topic: str, detail: str) -> None:
        super().__init__(f"{topic}: {detail}")
        self.topic = topic
        self.detail = detail


class DeliveryError(NotificationError):
    """Sending through one channel failed. ``permanent``: trying again cannot help (the SMTP
    server refused the recipient for good); otherwise the delivery loop retries with backoff."""

    code = "delivery_failed"

    def __init__(self, code: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent

"""The e-mail channel: one SMTP session per message with the standard library's smtplib, run
in a worker thread (smtplib blocks) and bounded by the socket timeout.

SMTP replies are sorted once, here: 5xx is permanent (RFC 5321 section 4.2.1: do not repeat
the same request), everything else -- 4xx, a dropped connection, a timeout -- is worth another
try later.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from api.notifications.adapters import OutgoingMessage
from api.notifications.errors import DeliveryError
from api.notifications.model import Channel
from api.notifications.settings import NotifySettings
from api.notifications.texts import text

PERMANENT_REPLY = 500


def build_email(message: OutgoingMessage, sender: str) -> EmailMessage:
    if not message.email:
        raise DeliveryError("no_address", "the customer has no e-mail address", permanent=True)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.email
    mail["Subject"] = message.title
    mail["Date"] = formatdate(message.issued_at.timestamp(), usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    mail["Message-ID"] = make_msgid(f"fleetlink.{message.delivery_id}", domain=domain)
    # RFC 3834: machine-generated, so auto-responders stay quiet.
    mail["Auto-Submitted"] = "auto-generated"
    mail["Content-Language"] = message.language
    lines = [message.body, ""]
    if message.vin:
        lines.append(text("email.vehicle", message.language, vin=message.vin))
    lines += ["", "-- ", text("email.footer", message.language)]
    mail.set_content("\n".join(lines))
    return mail


class SmtpAdapter:
    channel = Channel.EMAIL

    def __init__(self, settings: NotifySettings) -> None:
        self._settings = settings

    async def send(self, message: OutgoingMessage) -> None:
        mail = build_email(message, self._settings.smtp_from)
        try:
            await asyncio.to_thread(self._send_blocking, mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = all(code >= PERMANENT_REPLY for code in codes)
            raise DeliveryError(
                "smtp_recipient_refused",
                f"SMTP refused the recipient ({codes})",
                permanent=permanent,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                "smtp_rejected",
                f"SMTP {exc.smtp_code}: {_reply(exc.smtp_error)}",
                permanent=exc.smtp_code >= PERMANENT_REPLY,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # timeouts and refused connections too
            raise DeliveryError("smtp_unavailable", f"SMTP: {type(exc).__name__}: {exc}") from exc

    def _send_blocking(self, mail: EmailMessage) -> None:
        s = self._settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
            smtp.send_message(mail)

    async def aclose(self) -> None:
        return None  # a session per message: nothing held open


def _reply(raw: bytes | str) -> str:
    value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return value[:300]

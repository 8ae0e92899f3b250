"""FleetLink's policy inside amqtt: authentication against a CredentialVerifier and per-VIN
topic ACLs (``broker.policy``).

amqtt's own plugins are not enough here: its ACL plugin lists topics per user with no patterns,
and its taboo plugin lets a user named ``admin`` do anything. One plugin does both jobs because
the ACL needs the identity that authentication proved; identities are kept per client id and
only for connections that authenticated.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.policy import (
    Identity,
    VehicleIdentity,
    is_safe_identity,
    may_publish,
    may_receive,
    may_subscribe,
)
from broker.throttle import LoginThrottle

log = logging.getLogger("fleetlink.broker")


#: Where a session carries the identity its login proved.
IDENTITY_ATTRIBUTE = "fleetlink.identity"


class DenyReason:
    NO_CREDENTIALS = "no_credentials"
    UNSAFE_IDENTITY = "unsafe_identity"
    BAD_CREDENTIALS = "bad_credentials"
    CLIENT_ID_MISMATCH = "client_id_mismatch"
    WILL_TOPIC_FORBIDDEN = "will_topic_forbidden"
    PUBLISH_FORBIDDEN = "publish_forbidden"
    SUBSCRIBE_FORBIDDEN = "subscribe_forbidden"
    NOT_AUTHENTICATED = "not_authenticated"
    BAD_CERTIFICATE = "bad_certificate"
    THROTTLED = "throttled"
    VERIFIER_UNAVAILABLE = "verifier_unavailable"


class FleetLinkPolicyPlugin(BaseAuthPlugin, BaseTopicPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        # Typed Any: amqtt builds this with dacite, which cannot check Protocols or Counter.
        verifier: Any = None  # a broker.credentials.CredentialVerifier
        certificates: Any = None  # a broker.credentials.CertificateVerifier, for mTLS
        denials: Any = None  # a Counter[str] shared with the runtime
        throttle: Any = None  # a LoginThrottle
        connections: Any = None  # a Counter[str]: live connections per client id

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        config = self.context.config
        if config is None or getattr(config, "verifier", None) is None:
            raise ValueError("FleetLinkPolicyPlugin needs a 'verifier' in its config")
        self._verifier = config.verifier
        self._certificates = config.certificates
        self._throttle: LoginThrottle = config.throttle or LoginThrottle()
        self.denials: Counter[str] = config.denials if config.denials is not None else Counter()
        # amqtt's session take-over reuses one Session object for the old and the new connection
        # of a client id, and fires the old one's "disconnected" after the new one's "connected";
        # a count per client id stays right whatever the order.
        self.connections: Counter[str] = (
            config.connections if config.connections is not None else Counter()
        )

    def _deny(self, reason: str, session: Session | None, **detail: object) -> bool:
        self.denials[reason] += 1
        log.info(
            "broker.denied",
            extra={
                "reason": reason,
                "client_id": session.client_id if session else None,
                "username": session.username if session else None,
                "remote": session.remote_address if session else None,
                **detail,
            },
        )
        return False

    async def authenticate(self, *, session: Session) -> bool | None:
        # A failed attempt must not touch the identity of a live connection with the same
        # client id: only a successful login (below) or a disconnect changes it.
        source = session.remote_address or "unknown"
        claimed = session.username or session.client_id  # certificate logins send no username
        now = time.monotonic()
        if self._throttle.blocked(source, claimed, now):
            return self._deny(DenyReason.THROTTLED, session)
        try:
            identity = await self._identify(session)
        except Exception as exc:
            # The registry is unreachable (database down): refuse now rather than leave the
            # client waiting for a CONNACK. Not the client's fault, so not a throttle strike.
            return self._deny(DenyReason.VERIFIER_UNAVAILABLE, session, error=repr(exc)[:200])
        if identity is None:
            self._throttle.failed(source, claimed, now)
            return False
        client_id = session.client_id
        if isinstance(identity, VehicleIdentity) and client_id != identity.vin:
            return self._deny(DenyReason.CLIENT_ID_MISMATCH, session)
        if (
            session.will_flag
            and session.will_topic
            and not may_publish(identity, session.will_topic)
        ):
            return self._deny(DenyReason.WILL_TOPIC_FORBIDDEN, session, topic=session.will_topic)
        # Kept on the session object: it follows the session through amqtt's take-over (see
        # HardenedBroker), and a stale disconnect of an earlier connection cannot remove it.
        session.attributes[IDENTITY_ATTRIBUTE] = identity
        return True

    async def _identify(self, session: Session) -> Identity | None:
        """The identity a client certificate or username/password proves (denial counted)."""
        if not is_safe_identity(session.client_id) or (
            session.username is not None and not is_safe_identity(session.username)
        ):
            self._deny(DenyReason.UNSAFE_IDENTITY, session)
            return None
        certificate = _peer_certificate(session)
        if certificate is not None and self._certificates is not None:
            identity: Identity | None = await self._certificates.verify_certificate(certificate)
            if identity is None:
                self._deny(DenyReason.BAD_CERTIFICATE, session)
            elif session.username not in (None, "") and session.username != getattr(
                identity, "vin", None
            ):
                self._deny(DenyReason.CLIENT_ID_MISMATCH, session)
                return None
            return identity
        if not session.username or session.password is None:
            self._deny(DenyReason.NO_CREDENTIALS, session)
            return None
        password = session.password
        if isinstance(password, bytes | bytearray):
            password = password.decode("utf-8", "replace")
        identity = await self._verifier.verify(session.username, password)
        if identity is None:
            self._deny(DenyReason.BAD_CREDENTIALS, session)
        return identity

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        identity: Identity | None = (
            session.attributes.get(IDENTITY_ATTRIBUTE) if session is not None else None
        )
        if identity is None or topic is None:
            return self._deny(DenyReason.NOT_AUTHENTICATED, session, topic=topic)
        if action == Action.PUBLISH:
            return may_publish(identity, topic) or self._deny(
                DenyReason.PUBLISH_FORBIDDEN, session, topic=topic
            )
        if action == Action.SUBSCRIBE:
            return may_subscribe(identity, topic) or self._deny(
                DenyReason.SUBSCRIBE_FORBIDDEN, session, topic=topic
            )
        # RECEIVE: silently filtered; the subscribe check already counted any attempt.
        return may_receive(identity, topic)

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        self.connections[client_id] += 1

    async def on_broker_client_disconnected(
        self, *, client_id: str, client_session: Session
    ) -> None:
        self.connections[client_id] -= 1
        if self.connections[client_id] <= 0:
            del self.connections[client_id]


def _peer_certificate(session: Session) -> bytes | None:
    ssl_object: ssl.SSLObject | None = session.ssl_object
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der
